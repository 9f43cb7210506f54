#!/usr/bin/env python3
"""Lateness: from a slot's instant to its process's start, for every-second triggers.

Usage: scripts/lateness.py [--triggers 200] [--seconds 120] [--quiet N] [--cron] [--belfry PATH]

Builds scripts/stamp.c (a job that appends the slot it was started for and the instant it
started), deploys TRIGGERS triggers `* * * * * *` running it into a fresh database, runs the
daemon (release build by default) for SECONDS, and prints p50/p99/max of (start - slot).
Every trigger's queue allows all of them at once: nothing waits in a queue. With --quiet, the
daemon holds N more triggers beside them (Benchmarks/generate-schedules.py --quiet, none due),
as SPEC §8 frames the target: the window starts once the daemon has started.

Then two floors, each starting the same job TRIGGERS at a time, at each second, for 5 seconds,
with nothing else to do: a minimal C launcher calling posix_spawn (scripts/spawn-floor.c), and a
Swift one calling swift-subprocess's `Subprocess.run` as Belfry does (Benchmarks' SpawnFloor,
built on first use).

With --cron, Debian's cron runs the same job every minute in the same window (a file in
/etc/cron.d; cron is started if it is not running; needs root), and its lateness after the
minute is printed beside Belfry's.
"""
import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def summary(name, latenesses_ms):
    if not latenesses_ms:
        return f"{name}: no runs"
    return (f"{name}: {len(latenesses_ms)} starts, lateness p50 {percentile(latenesses_ms, 50):.2f} ms, "
            f"p99 {percentile(latenesses_ms, 99):.2f} ms, max {max(latenesses_ms):.2f} ms")


def read_stamps(path):
    result = []
    if os.path.exists(path):
        for line in open(path):
            slot, started = line.split()
            result.append((int(slot), (int(started) - int(slot) * 1_000_000_000) / 1e6))
    return result


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--triggers", type=int, default=200)
    parser.add_argument("--seconds", type=int, default=120)
    parser.add_argument("--cron", action="store_true")
    parser.add_argument("--quiet", type=int, default=0, help="triggers that are not due, beside the firing ones")
    parser.add_argument("--belfry", default=os.path.join(ROOT, ".build/release/belfry"))
    args = parser.parse_args()

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

    database = os.path.join(work, "belfry.sqlite")
    log = open(os.path.join(work, "daemon.log"), "w")
    daemon = subprocess.Popen([args.belfry, "daemon", "--schedules", schedules, "--database", database], stderr=log)
    quiet = f", beside {args.quiet} triggers not due" if args.quiet else ""
    print(f"{args.triggers} every-second triggers{quiet} for {args.seconds} s (work directory {work})", flush=True)
    while "daemon started" not in open(log.name).read() and daemon.poll() is None:
        time.sleep(0.1)
    begin = time.time()
    time.sleep(args.seconds)
    with open(f"/proc/{daemon.pid}/stat") as f:  # the daemon's own CPU time (user + system), its jobs not included
        fields = f.read().rsplit(")", 1)[1].split()
    daemon_cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    daemon.send_signal(signal.SIGTERM)
    daemon.wait()
    end = time.time()
    if args.cron:
        os.remove(cron_file)
        if cron_process:
            cron_process.terminate()
            cron_process.wait()

    # The first seconds are start-up (deploy, the first slot may be caught up): count slots
    # from 3 s after the start on.
    belfry = [ms for slot, ms in read_stamps(out) if int(begin + 3) + 1 <= slot <= int(end)]
    expected = args.triggers * len(range(int(begin + 3) + 1, int(end) + 1))
    print(summary("belfry", belfry) + f" (for {expected} slots)")
    started = len(read_stamps(out))
    if started:
        print(f"daemon CPU: {daemon_cpu:.1f} s in all, {daemon_cpu / started * 1000:.2f} ms per run ({started} runs, start-up included)")
    if args.cron:
        print(summary("cron (per-minute job)", [ms for _, ms in read_stamps(cron_out)]))
    # The floor: N processes started at once by a minimal C launcher (scripts/spawn-floor.c).
    floor = os.path.join(work, "spawn-floor")
    subprocess.run(["gcc", "-O2", "-o", floor, os.path.join(ROOT, "scripts/spawn-floor.c")], check=True)
    floor_out = os.path.join(work, "floor.out")
    subprocess.run([floor, str(args.triggers), stamp, floor_out], check=True)
    print(summary(f"floor: {args.triggers} posix_spawn() at once from C", [ms for _, ms in read_stamps(floor_out)]))
    benchmarks = os.path.join(ROOT, "Benchmarks")
    subprocess.run(["swift", "build", "-c", "release", "--product", "SpawnFloor"], cwd=benchmarks, check=True,
                   stdout=subprocess.DEVNULL)
    swift_out = os.path.join(work, "swift-floor.out")
    subprocess.run([os.path.join(benchmarks, ".build/release/SpawnFloor"), str(args.triggers), stamp, swift_out], check=True)
    print(summary(f"floor: {args.triggers} Subprocess.run at once from Swift", [ms for _, ms in read_stamps(swift_out)]))
    sys.exit(0 if belfry else 1)


main()
