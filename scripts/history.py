#!/usr/bin/env python3
"""History at size: a database holding RUNS runs, then the listing commands timed on it.

Usage: scripts/history.py [--runs 1100000] [--belfry PATH]
       scripts/with-postgres.sh scripts/history.py --postgres [--runs 1000000]

Deploys 1,000 generated triggers (Benchmarks/generate-schedules.py) into a fresh database, then
writes RUNS finished runs spread evenly over them, one a minute per trigger (a third retried
once, a tenth failed), as the daemon would have recorded them. The per-hour figures behind
`stats` are then rebuilt by Belfry's own migration (v2 is undone and runs again: the upgrade
path of a database that already holds the runs). Then times with hyperfine: `runs --limit 50`,
`runs show ID`, `stats`, `stats --task T`, and runs `belfry prune` to show the database bounded
by the policy (1,000 runs per trigger, 90 days).

With --postgres, the SQLite database is then copied into a fresh PostgreSQL database (of
$BELFRY_TEST_POSTGRES_URL's server) with `belfry copy-store` (timed), and the same commands are
timed on it.
"""
import argparse
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time

from test_postgres import fresh_database

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=1_100_000)
    parser.add_argument("--belfry", default=os.path.join(ROOT, ".build/release/belfry"))
    parser.add_argument("--postgres", action="store_true", help="also copy the history to PostgreSQL and time the commands there")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="belfry-history-")
    schedules = os.path.join(work, "schedules")
    database = os.path.join(work, "belfry.sqlite")
    subprocess.run([sys.executable, os.path.join(ROOT, "Benchmarks/generate-schedules.py"), schedules, "1000"], check=True)
    subprocess.run([args.belfry, "deploy", schedules, "--database", database], check=True, stdout=subprocess.DEVNULL)

    db = sqlite3.connect(database)
    triggers = db.execute('SELECT t.name, tr.name FROM "trigger" tr JOIN task t ON t.id = tr.task_id').fetchall()
    per_trigger = args.runs // len(triggers)
    now = int(time.time())
    rng = random.Random(7)
    begin = time.time()
    db.execute("BEGIN")
    run_id = 0
    # Slot by slot across all triggers, so that ids grow with time as in a real database.
    for k in range(per_trigger):
        slot = now - (per_trigger - k) * 60
        runs, attempts = [], []
        for task, trigger in triggers:
            run_id += 1
            failed = rng.random() < 0.1
            retried = rng.random() < 0.33
            count = 2 if retried else 1
            started = slot * 1000 + 5
            finished = started + rng.randint(10, 5000)
            runs.append((run_id, task, trigger, slot, "scheduled", "failed" if failed else "succeeded",
                         "exit code 1" if failed else None, count, 1 if failed else 0, slot * 1000, started, finished, "primary"))
            for n in range(1, count + 1):
                attempts.append((run_id, n, started, finished, 4242, 1 if failed or n < count else 0, b"done\n",
                                 f"{os.path.dirname(database)}/logs/{run_id}/attempt-{n}.log"))
        db.executemany("""INSERT INTO run (id, task, "trigger", slot, origin, state, reason, attempts, exit_code, queued_at,
                          started_at, finished_at, command_used) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)""", runs)
        db.executemany("""INSERT INTO attempt (run_id, number, started_at, finished_at, pid, exit_code, output_tail, log_path)
                          VALUES (?,?,?,?,?,?,?,?)""", attempts)
    db.execute("COMMIT")
    db.execute("DROP TABLE run_stats")
    db.execute("DROP INDEX run_by_queued")
    db.execute("DELETE FROM grdb_migrations WHERE identifier LIKE 'v2:%'")
    db.commit()
    db.close()
    print(f"{run_id} runs written in {time.time() - begin:.1f} s; database {os.path.getsize(database) / 2**20:.0f} MiB ({work})")
    begin = time.time()
    subprocess.run([args.belfry, "runs", "--limit", "1", "--database", database], check=True, stdout=subprocess.DEVNULL)
    print(f"migration v2 (figures of every run for stats): {time.time() - begin:.1f} s")

    task = triggers[0][0]

    def time_commands(location, name):
        commands = [
            f"{args.belfry} runs --limit 50 --database {location}",
            f"{args.belfry} runs --limit 50 --json --database {location}",
            f"{args.belfry} runs show {run_id // 2} --database {location}",
            f"{args.belfry} stats --database {location}",
            f"{args.belfry} stats --task {task} --database {location}",
        ]
        subprocess.run(["hyperfine", "--warmup", "2", "--runs", "10", "-N", "--style", "basic", "--export-markdown",
                        os.path.join(work, name)] + commands, check=True)
        print(open(os.path.join(work, name)).read())

    time_commands(database, "hyperfine.md")
    if args.postgres:
        url = fresh_database("history.py", "history")
        begin = time.time()
        subprocess.run([args.belfry, "copy-store", "--from", database, "--to", url], check=True)
        print(f"copy-store to PostgreSQL: {time.time() - begin:.1f} s")
        subprocess.run(["psql", "-qX", url, "-c", "VACUUM ANALYZE"], check=True)
        time_commands(f"'{url}'", "hyperfine-postgres.md")

    # Pruning: one extra day of runs beyond the per-trigger limit, then the policy.
    begin = time.time()
    result = subprocess.run([args.belfry, "prune", "--database", database], capture_output=True, text=True)
    print(f"prune: {time.time() - begin:.1f} s: {result.stdout.strip() or result.stderr.strip()}")
    db = sqlite3.connect(database)
    print("runs after pruning:", db.execute("SELECT count(*) FROM run").fetchone()[0],
          "; most per trigger:", db.execute('SELECT max(c) FROM (SELECT count(*) c FROM run GROUP BY task, "trigger")').fetchone()[0])


main()
