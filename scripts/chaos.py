#!/usr/bin/env python3
"""Chaos: SIGKILL the daemon again and again while every-second triggers run, then check.

Usage: scripts/chaos.py [--kills 50] [--seed N] [--belfry PATH]

Three every-second triggers: `tick` (a job of 0-0.4 s), `slow` (1-3 s, overlap allow: several
in flight), `flaky` (fails its first attempt, retried after a 1 s backoff: kills land in the
backoff). Each kill comes at a random moment: right after the start (during deploy and
recovery), or 1-3 s in (between a slot's commit and its launch, mid-attempt, mid-backoff). A
redeploy (touching a file) happens now and then. After the kills, one clean run lets resumed
runs finish, then:
  - no slot recorded twice (per trigger); every second from the first slot to the last is a
    run or a `missed`/`skipped` record;
  - no run left queued or running; none lost (every state final);
  - every attempt process orphaned by a kill is gone a second after the next start, and none
    is alive at the end (found by environment, as the daemon looks for them);
  - `PRAGMA integrity_check` is ok.
Exits non-zero when a check fails.
"""
import argparse
import datetime
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SCHEDULES = """\
tasks:
  - name: tick
    command: {{ shell: 'sleep 0.$((RANDOM % 5))' }}
    triggers: [{{ name: each_second, cron: "* * * * * *" }}]
  - name: slow
    command: {{ shell: 'sleep $((1 + RANDOM % 3))' }}
    triggers: [{{ name: each_second, cron: "* * * * * *" }}]
  - name: flaky
    command: {{ shell: 'test "$BELFRY_ATTEMPT" -gt 1' }}
    retries: {{ count: 2, backoff: {{ initial: 1s, jitter: 0 }} }}
    triggers: [{{ name: each_second, cron: "* * * * * *" }}]
# touched: {touch}
"""


def attempt_processes(database):
    """Pids of live processes started for this database (by their environment)."""
    found = []
    needle = f"BELFRY_DATABASE={database}".encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            environ = open(f"/proc/{entry}/environ", "rb").read().split(b"\0")
            state = open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if needle in environ and state != "Z" and any(v.startswith(b"BELFRY_RUN_ID=") for v in environ):
            found.append(int(entry))
    return found


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--belfry", default=os.path.join(ROOT, ".build/release/belfry"))
    args = parser.parse_args()
    rng = random.Random(args.seed)
    work = tempfile.mkdtemp(prefix="belfry-chaos-")
    schedules = os.path.join(work, "schedules")
    os.makedirs(schedules)
    database = os.path.join(work, "belfry.sqlite")
    schedule_file = os.path.join(schedules, "chaos.yaml")
    with open(schedule_file, "w") as f:
        f.write(SCHEDULES.format(touch=0))
    print(f"{args.kills} SIGKILLs, seed {args.seed}, work directory {work}", flush=True)

    moments = {"at start": 0, "running": 0}
    orphans, survivors = set(), set()
    for kill in range(args.kills):
        if rng.random() < 0.2:  # redeploy now and then: the daemon deploys at start
            with open(schedule_file, "w") as f:
                f.write(SCHEDULES.format(touch=kill))
        log = open(os.path.join(work, f"daemon-{kill:02d}.log"), "w")
        daemon = subprocess.Popen([args.belfry, "daemon", "--schedules", schedules, "--database", database], stderr=log)
        left = set(attempt_processes(database))  # the previous daemon's jobs, orphaned by its kill
        orphans |= left
        if rng.random() < 0.2:
            time.sleep(rng.uniform(0, 0.15))
            moments["at start"] += 1
        else:
            time.sleep(rng.uniform(1.0, 3.0))
            moments["running"] += 1
            # Started a second or more ago, the daemon has recovered: the orphans are gone.
            survivors |= left & set(attempt_processes(database))
        daemon.send_signal(signal.SIGKILL)
        daemon.wait()
    print(f"kills: {moments}; {len(orphans)} attempt processes orphaned by kills, "
          f"{len(survivors)} of them alive a second after the next start", flush=True)

    daemon = subprocess.Popen([args.belfry, "daemon", "--schedules", schedules, "--database", database],
                              stderr=open(os.path.join(work, "last.log"), "w"))
    time.sleep(8)
    daemon.send_signal(signal.SIGTERM)
    daemon.wait()
    time.sleep(0.5)

    failures = [f"orphans survived a restart: {sorted(survivors)}"] if survivors else []
    db = sqlite3.connect(database)
    integrity = db.execute("PRAGMA integrity_check").fetchone()[0]
    if integrity != "ok":
        failures.append(f"integrity_check: {integrity}")
    unfinished = db.execute("SELECT count(*) FROM run WHERE state IN ('queued', 'running')").fetchone()[0]
    # The clean stop lets running jobs finish for its grace (30 s): none should be left.
    if unfinished:
        failures.append(f"{unfinished} runs left queued or running after a clean stop")
    for task in ("tick", "slow", "flaky"):
        slots = [row[0] for row in db.execute("SELECT slot FROM run WHERE task = ? ORDER BY slot", (f"chaos.{task}",))]
        if not slots:
            failures.append(f"{task}: no runs at all")
            continue
        if len(set(slots)) != len(slots):
            failures.append(f"{task}: a slot recorded twice")
        missing = (slots[-1] - slots[0] + 1) - len(set(slots))
        if missing:
            failures.append(f"{task}: {missing} seconds between the first slot and the last have no record")
        states = dict(db.execute("SELECT state, count(*) FROM run WHERE task = ? GROUP BY state", (f"chaos.{task}",)).fetchall())
        print(f"{task}: {len(slots)} slots over {slots[-1] - slots[0] + 1} s: {states}")
    interrupted = db.execute("SELECT count(*) FROM run WHERE system_retries > 0").fetchone()[0]
    print(f"runs resumed after a kill: {interrupted}")
    alive = attempt_processes(database)
    if alive:
        failures.append(f"attempt processes still alive: {alive}")
    if failures:
        print("FAILED:\n  " + "\n  ".join(failures))
        sys.exit(1)
    print("all checks passed: no slot twice, none unaccounted, nothing left running, integrity ok")


main()
