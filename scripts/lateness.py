#!/usr/bin/env python3
"""Lateness: from a slot's instant to its process's start, for every-second triggers.

Usage: scripts/lateness.py [--triggers 200] [--seconds 120] [--rounds R] [--quiet N] [--cron] [--belfry PATH]
       scripts/with-postgres.sh scripts/lateness.py --postgres-nodes 3 [--triggers 200] [--seconds 120]

Builds scripts/stamp.c (a job that appends the slot it was started for and the instant it
started), deploys TRIGGERS triggers `* * * * * *` running it into a fresh database, runs the
daemon (release build by default) for SECONDS, and prints p50/p99/max of (start - slot).
Every trigger's queue allows all of them at once: nothing waits in a queue. With --quiet, the
daemon holds N more triggers beside them (Benchmarks/generate-schedules.py --quiet, none due),
as SPEC §8 frames the target: the window starts once the daemon has started.

Then two floors, each starting the same job TRIGGERS at a time, at each second, for 5 seconds
(the C one for --floor-seconds, default 20: its p99 over 5 bursts moved by a third from run to run),
with nothing else to do: a minimal C launcher calling posix_spawn (scripts/spawn-floor.c; with
--rounds R, the daemon and the C floor take turns R times, so that a shared machine's slow spell
falls on both rather than on one; each round's ratio is printed), and,
with --swift-floor, a Swift one calling swift-subprocess's `Subprocess.run` (Benchmarks'
SpawnFloor, built on first use: minutes on a fresh checkout).

With --postgres-nodes N, the same triggers run first on N daemons sharing a fresh PostgreSQL
database (of $BELFRY_TEST_POSTGRES_URL's server), then on one daemon with SQLite, for SECONDS
each: both figures are printed, and each slot's count of starts is checked (every slot once).

With --cron, Debian's cron runs the same job every minute in the same window (a file in
/etc/cron.d; cron is started if it is not running; needs root), and its lateness after the
minute is printed beside Belfry's.
"""
import argparse
import os
import signal
import shutil
import subprocess
import sys
import tempfile
import time

from harness import cpu_seconds, free_port, percentile, read_stamps
from test_postgres import fresh_database

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def summary(name, latenesses_ms):
    if not latenesses_ms:
        return f"{name}: no runs"
    return (f"{name}: {len(latenesses_ms)} starts, lateness p50 {percentile(latenesses_ms, 50):.2f} ms, "
            f"p99 {percentile(latenesses_ms, 99):.2f} ms, max {max(latenesses_ms):.2f} ms")


def measure(args, commands, work, out, during=None, seconds=None):
    """Runs the daemons for `seconds` (args.seconds by default); returns the latenesses (ms) of the slots from 3 s after
    they all started to the end, the daemons' own CPU seconds, and that window of slots.
    `during`, if given, is called once the daemons have started and returns a process that runs
    beside them (a load); it is waited for before the daemons stop."""
    daemons = []
    logs = []
    for index, command in enumerate(commands):
        log = open(os.path.join(work, f"daemon{index + 1}.log"), "w")
        logs.append(log)
        env = dict(os.environ, XDG_STATE_HOME=os.path.join(work, f"state{index + 1}"))
        daemons.append(subprocess.Popen(command, stderr=log, env=env))
    for daemon, log in zip(daemons, logs):
        while "daemon started" not in open(log.name).read() and daemon.poll() is None:
            time.sleep(0.1)
    begin = time.time()
    load = during() if during else None
    time.sleep(seconds or args.seconds)
    if load:
        load.wait()
    cpu = sum(cpu_seconds(daemon.pid) for daemon in daemons)  # the daemons' own, their jobs not included
    stop = time.time()
    for daemon in daemons:
        daemon.send_signal(signal.SIGTERM)
    for daemon in daemons:
        daemon.wait()
    # The first seconds are start-up (deploy, the first slot may be caught up): count slots
    # from 3 s after the start on, to the last whole second before the daemons were told to stop
    # (a stopping daemon starts nothing new).
    window = range(int(begin + 3) + 1, int(stop))
    return [ms for slot, ms in read_stamps(out) if slot in window], cpu, window


def http_load(args, schedules, work, out, unloaded):
    """The same daemon serving its HTTP API to N clients (wrk, GET /api/v1/runs?limit=50 with a
    token) for the whole window: the API's latency, and the lateness against `unloaded`."""
    os.rename(out, os.path.join(work, "belfry-unloaded.out"))
    token = "lateness-load-token-0123456789"
    tokens = os.path.join(work, "http-tokens")
    with open(tokens, "w") as f:
        f.write(f"load admin {token}\n")
    os.chmod(tokens, 0o600)
    port = free_port()
    wrk_out = os.path.join(work, "wrk.out")

    pause = []
    if args.http_pause:
        # wrk calls the script's delay() before each request of a connection: a client that
        # reads, then waits, as a dashboard or a script polling the API does.
        script = os.path.join(work, "pause.lua")
        with open(script, "w") as f:
            f.write(f"function delay()\n  return {args.http_pause}\nend\n")
        pause = ["-s", script]

    def start_load():
        return subprocess.Popen(["wrk", "-t", "2", "-c", str(args.http_load), "-d", f"{args.seconds}s", "--latency", *pause, "-H",
                                 f"Authorization: Bearer {token}", f"http://127.0.0.1:{port}/api/v1/runs?limit=50"],
                                stdout=open(wrk_out, "w"), stderr=subprocess.STDOUT)

    each = f", each waiting {args.http_pause} ms between its requests" if args.http_pause else ""
    print(f"the same, with --http and {args.http_load} API clients (wrk){each} for the whole window", flush=True)
    database = os.path.join(work, "belfry-http.sqlite")
    loaded, _, window = measure(args, [[args.belfry, "daemon", "--schedules", schedules, "--database", database,
                                        "--http", f"127.0.0.1:{port}", "--http-tokens", tokens]], work, out, during=start_load)
    print(summary("belfry under API load", loaded) + f" (for {args.triggers * len(window)} slots)")
    if unloaded and loaded:
        print(f"lateness under load / without: p50 {percentile(loaded, 50) / percentile(unloaded, 50):.2f}x, "
              f"p99 {percentile(loaded, 99) / percentile(unloaded, 99):.2f}x")
    report = open(wrk_out).read()
    wanted = [line.strip() for line in report.splitlines()
              if line.strip().startswith(("50%", "90%", "99%", "Requests/sec", "Non-2xx", "Socket errors")) or "requests in" in line]
    print("API (wrk): " + "; ".join(wanted))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--triggers", type=int, default=200)
    parser.add_argument("--seconds", type=int, default=120)
    parser.add_argument("--cron", action="store_true")
    parser.add_argument("--quiet", type=int, default=0, help="triggers that are not due, beside the firing ones")
    parser.add_argument("--belfry", default=os.path.join(ROOT, ".build/release/belfry"))
    parser.add_argument("--postgres-nodes", type=int, default=0, help="also run the triggers on N daemons sharing PostgreSQL")
    parser.add_argument("--http-load", type=int, default=0,
                        help="then run the SQLite daemon again with --http, under N concurrent API clients (wrk), and compare")
    parser.add_argument("--http-pause", type=int, default=0, metavar="MS",
                        help="with --http-load: each client waits MS milliseconds after an answer before its next request (default: none)")
    parser.add_argument("--floor-seconds", type=int, default=20,
                        help="how many bursts the C floor starts, one a second (default 20)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="alternate the SQLite daemon and the C floor this many times, SECONDS/ROUNDS and "
                             "FLOOR_SECONDS/ROUNDS each (a fresh database each round): a shared machine's slow "
                             "spells then fall on both, not on one")
    parser.add_argument("--swift-floor", action="store_true",
                        help="also the floor of swift-subprocess's Subprocess.run (builds Benchmarks' SpawnFloor)")
    args = parser.parse_args()
    if args.http_load and shutil.which("wrk") is None:
        sys.exit("--http-load needs wrk (Debian: apt-get install wrk)")

    work = tempfile.mkdtemp(prefix="belfry-lateness-")
    stamp = os.path.join(work, "stamp")
    subprocess.run(["gcc", "-O2", "-o", stamp, os.path.join(ROOT, "scripts/stamp.c")], check=True)
    schedules = os.path.join(work, "schedules")
    os.makedirs(schedules)
    out = os.path.join(work, "belfry.out")
    lines = [f"queues:\n  now: {{ concurrency: {args.triggers} }}\n",
             "environment:\n  name: lateness\n  queue: now\ntasks:\n"]
    for i in range(args.triggers):
        lines.append(f"  - name: job-{i:03d}\n    command: [\"{stamp}\", \"{out}\"]\n"
                     f"    triggers: [{{ name: each_second, cron: \"* * * * * *\" }}]\n")
    with open(os.path.join(schedules, "lateness.yaml"), "w") as f:
        f.write("".join(lines))
    if args.quiet:
        subprocess.run([sys.executable, os.path.join(ROOT, "Benchmarks/generate-schedules.py"), schedules,
                        str(args.quiet), "--quiet"], check=True)

    cron_out = os.path.join(work, "cron.out")
    cron_file = "/etc/cron.d/belfry-lateness"
    cron_process = None
    if args.cron:
        with open(cron_file, "w") as f:
            f.write(f"* * * * * root {stamp} {cron_out}\n")
        if subprocess.run(["pgrep", "-x", "cron"], capture_output=True).returncode != 0:
            cron_process = subprocess.Popen(["cron", "-f"], stderr=subprocess.DEVNULL)

    quiet = f", beside {args.quiet} triggers not due" if args.quiet else ""
    if args.postgres_nodes:
        url = fresh_database("lateness.py", "lateness")
        subprocess.run([args.belfry, "deploy", "--database", url, schedules], check=True, stdout=subprocess.DEVNULL)
        pg_out = os.path.join(work, "postgres.out")
        print(f"{args.triggers} every-second triggers on {args.postgres_nodes} daemons sharing PostgreSQL for {args.seconds} s "
              f"(work directory {work})", flush=True)
        starts, cpu, window = measure(args, [[args.belfry, "daemon", "--database", url, "--node-name", f"node{i + 1}", schedules]
                                             for i in range(args.postgres_nodes)], work, out)
        os.rename(out, pg_out)  # the jobs write where the definitions say; SQLite's phase comes next
        print(summary(f"belfry, {args.postgres_nodes} nodes on PostgreSQL", starts) + f" (for {args.triggers * len(window)} slots)")
        per_slot = {}
        for slot, _ in read_stamps(pg_out):
            per_slot[slot] = per_slot.get(slot, 0) + 1
        wrong = {slot: count for slot, count in per_slot.items() if slot in window and count != args.triggers}
        twice = subprocess.run(["psql", "-qXAt", url, "-c", 'SELECT count(*) FROM (SELECT 1 FROM run GROUP BY task, "trigger", slot '
                                "HAVING count(*) > 1) x"], capture_output=True, text=True).stdout.strip()
        nodes = subprocess.run(["psql", "-qXAt", "-F", " ", url, "-c", "SELECT node_name, count(*) FROM run GROUP BY 1 ORDER BY 1"],
                               capture_output=True, text=True).stdout.strip().replace("\n", ", ")
        print(f"slots with other than {args.triggers} starts: {len(wrong)}; slots recorded twice: {twice}; runs per node: {nodes}; "
              f"daemons' CPU {cpu:.1f} s")
    floor = os.path.join(work, "spawn-floor")
    subprocess.run(["gcc", "-O2", "-o", floor, os.path.join(ROOT, "scripts/spawn-floor.c")], check=True)
    floor_out = os.path.join(work, "floor.out")
    rounds = max(1, args.rounds)
    each = f" in {rounds} rounds, each followed by the C floor" if rounds > 1 else ""
    print(f"{args.triggers} every-second triggers{quiet} on one daemon with SQLite for {args.seconds} s{each} "
          f"(work directory {work})", flush=True)
    belfry, daemon_cpu, expected, ratios = [], 0.0, 0, []
    for index in range(rounds):
        database = os.path.join(work, f"belfry-{index + 1}.sqlite" if rounds > 1 else "belfry.sqlite")
        latenesses, cpu, window = measure(args, [[args.belfry, "daemon", "--schedules", schedules, "--database", database]], work, out,
                                          seconds=max(5, args.seconds // rounds))
        belfry += latenesses
        daemon_cpu += cpu
        expected += args.triggers * len(window)
        if rounds > 1:
            before = len(read_stamps(floor_out))
            subprocess.run([floor, str(args.triggers), stamp, floor_out, str(max(1, args.floor_seconds // rounds))], check=True)
            beside = [ms for _, ms in read_stamps(floor_out)[before:]]
            if latenesses and beside:
                ratios.append(percentile(latenesses, 99) / percentile(beside, 99))
                print(f"  round {index + 1}: belfry p99 {percentile(latenesses, 99):.2f} ms, C floor p99 {percentile(beside, 99):.2f} ms: "
                      f"{ratios[-1]:.2f}x", flush=True)
    print(summary("belfry", belfry) + f" (for {expected} slots)")
    started = len(read_stamps(out))
    if started:
        print(f"daemon CPU: {daemon_cpu:.1f} s in all, {daemon_cpu / started * 1000:.2f} ms per run ({started} runs, start-up included)")
    if args.http_load:
        http_load(args, schedules, work, out, belfry)
    if args.cron:
        os.remove(cron_file)
        if cron_process:
            cron_process.terminate()
            cron_process.wait()
        print(summary("cron (per-minute job)", [ms for _, ms in read_stamps(cron_out)]))
    # The floor: N processes started at once by a minimal C launcher (scripts/spawn-floor.c); with
    # --rounds, it ran after each round above.
    if rounds == 1:
        subprocess.run([floor, str(args.triggers), stamp, floor_out, str(args.floor_seconds)], check=True)
    floor_latenesses = [ms for _, ms in read_stamps(floor_out)]
    print(summary(f"floor: {args.triggers} posix_spawn() at once from C", floor_latenesses))
    if belfry and floor_latenesses:
        print(f"p99 against the C floor: {percentile(belfry, 99) / percentile(floor_latenesses, 99):.2f}x"
              + (f"; the rounds' own ratios: median {sorted(ratios)[len(ratios) // 2]:.2f}x" if ratios else ""))
    if not args.swift_floor:
        sys.exit(0 if belfry else 1)
    benchmarks = os.path.join(ROOT, "Benchmarks")
    subprocess.run(["swift", "build", "-c", "release", "--product", "SpawnFloor"], cwd=benchmarks, check=True,
                   stdout=subprocess.DEVNULL)
    swift_out = os.path.join(work, "swift-floor.out")
    subprocess.run([os.path.join(benchmarks, ".build/release/SpawnFloor"), str(args.triggers), stamp, swift_out], check=True)
    print(summary(f"floor: {args.triggers} Subprocess.run at once from Swift", [ms for _, ms in read_stamps(swift_out)]))
    sys.exit(0 if belfry else 1)


main()
