#!/usr/bin/env python3
"""What H does to lateness: the same N hourly triggers written with a fixed minute, and with H.

Usage: scripts/hash-spread.py [--triggers 100000] [--minutes 10] [--belfry PATH]

Builds scripts/stamp.c (a job that appends the slot it was started for and the instant it
started) and runs the daemon (release build by default) three times, each on a fresh SQLite
database with TRIGGERS triggers running it, all in the default queue (concurrency 16):

1. `M * * * *`: every trigger on the same minute M, chosen a little after the daemon is ready
   (the minute of `0 * * * *`, without waiting for the hour). Runs until every slot started.
2. `H * * * *`: each trigger on its own hashed minute, at second 0 of it.
3. `H H * * * *`: the hash also picks the second.

Cases 2 and 3 run for MINUTES and count the slots in that window (about TRIGGERS × MINUTES / 60).
Prints, per case, the starts, p50/p99/max of (start - slot), the largest number of slots due in one
second, and the daemon's CPU per run.
"""
import argparse
import json
import os
import signal
import subprocess
import tempfile
import time

from harness import cpu_seconds, percentile, read_stamps, rss_mib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def write_schedules(directory, triggers, cron, stamp, out):
    """TRIGGERS tasks in 100 files, one trigger each, so that H's key (ENV.TASK TRIGGER) differs."""
    os.makedirs(directory)
    files = 100
    for f in range(files):
        lines = [f"environment:\n  name: env{f:03d}\ntasks:\n"]
        for t in range(triggers // files):
            lines.append(f"  - name: job{t:05d}\n    command: [\"{stamp}\", \"{out}\"]\n"
                         f"    triggers: [{{ name: hourly, cron: \"{cron}\" }}]\n")
        with open(os.path.join(directory, f"env{f:03d}.yaml"), "w") as handle:
            handle.write("".join(lines))


def run_case(args, work, name, cron_for):
    """Deploys and starts the daemon; cron_for(ready) gives the expression, given the instant the
    deploy and the start are expected to end. Returns the stamps within the window and the daemon's CPU seconds."""
    case = os.path.join(work, name)
    os.makedirs(case)
    out = os.path.join(case, "stamps")
    database = os.path.join(case, "belfry.sqlite")
    schedules = os.path.join(case, "schedules")
    # The fixed minute must come after the deploy: a first deploy of 100,000 triggers takes tens
    # of seconds here. Deploy first, then start the daemon on the same files.
    cron, window = cron_for(time.time() + 30)
    write_schedules(schedules, args.triggers, cron, args.stamp, out)
    begin = time.time()
    subprocess.run([args.belfry, "deploy", "--database", database, schedules], check=True, stdout=subprocess.DEVNULL)
    log = open(os.path.join(case, "daemon.log"), "w")
    env = dict(os.environ, XDG_STATE_HOME=os.path.join(case, "state"))
    daemon = subprocess.Popen([args.belfry, "daemon", "--schedules", schedules, "--database", database],
                              stderr=log, env=env)
    while "daemon started" not in open(log.name).read() and daemon.poll() is None:
        time.sleep(0.2)
    ready = time.time()
    print(f"{name}: \"{cron}\", deployed and started in {ready - begin:.0f} s", flush=True)
    first, last = window(ready)
    expected = args.triggers if first == last else slots_in_window(args, database, first, last)
    if first <= ready:
        raise SystemExit(f"{name}: the window starts before the daemon was ready; try again")
    # Wait for the window to pass, then until every slot in it has started (or 20 minutes more).
    deadline = last + 20 * 60
    peak = 0
    (progress, progressed) = (-1, time.time())
    while time.time() < deadline:
        time.sleep(5)
        peak = max(peak, rss_mib(daemon.pid))
        started = sum(1 for slot, _ in read_stamps(out) if first <= slot <= last)
        if started != progress:
            (progress, progressed) = (started, time.time())
        # Every slot started, or none for 60 s after the first did (a run that failed to start
        # writes no stamp: the report says how many are missing).
        if time.time() > last and (started >= expected or (started > 0 and time.time() - progressed > 60)):
            break
    cpu = cpu_seconds(daemon.pid)
    print(f"{name}: daemon's resident memory at most {peak:.0f} MiB (sampled every 5 s)", flush=True)
    daemon.send_signal(signal.SIGTERM)
    daemon.wait()
    stamps = [(slot, ms) for slot, ms in read_stamps(out) if first <= slot <= last]
    return stamps, expected, cpu


def report(name, stamps, expected, cpu):
    lateness = [ms for _, ms in stamps]
    per_second = {}
    for slot, _ in stamps:
        per_second[slot] = per_second.get(slot, 0) + 1
    if not lateness:
        print(f"{name}: no starts")
        return
    print(f"{name}: {len(lateness)} of {expected} slots started; lateness p50 {percentile(lateness, 50) / 1000:.2f} s, "
          f"p99 {percentile(lateness, 99) / 1000:.2f} s, max {max(lateness) / 1000:.2f} s; "
          f"at most {max(per_second.values())} slots in one second; daemon CPU {cpu / len(lateness) * 1000:.2f} ms per run "
          f"(start-up included)", flush=True)


def slots_in_window(args, database, first, last):
    """How many slots the deployed triggers have in [first, last], from the resolved expressions
    `belfry trigger list --json` shows (`S M * * * *` or `M * * * *`, hourly, in UTC)."""
    listing = json.loads(subprocess.run([args.belfry, "trigger", "list", "--database", database, "--json"],
                                        capture_output=True, text=True, check=True).stdout)
    count = 0
    for trigger in listing:
        fields = trigger["resolved_schedule"].split()
        second, minute = (int(fields[0]), int(fields[1])) if len(fields) == 6 else (0, int(fields[0]))
        offset = minute * 60 + second
        hour = first - first % 3600
        while hour <= last:
            count += first <= hour + offset <= last
            hour += 3600
    return count


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--triggers", type=int, default=100_000)
    parser.add_argument("--minutes", type=int, default=10, help="window of the H cases")
    parser.add_argument("--belfry", default=os.path.join(ROOT, ".build/release/belfry"))
    parser.add_argument("--cases", default="fixed,hash-minute,hash-second", help="which of the three to run")
    args = parser.parse_args()
    args.triggers -= args.triggers % 100
    work = tempfile.mkdtemp(prefix="belfry-hash-spread-")
    args.stamp = os.path.join(work, "stamp")
    subprocess.run(["gcc", "-O2", "-o", args.stamp, os.path.join(ROOT, "scripts/stamp.c")], check=True)
    print(f"{args.triggers} hourly triggers, default queue (concurrency 16), work directory {work}", flush=True)

    def fixed(after):
        minute_start = (int(after) // 60 + 1) * 60  # the first whole minute after `after`
        return f"{time.gmtime(minute_start).tm_min} * * * *", lambda ready: (minute_start, minute_start)

    def hashed(expression):
        def window(ready):
            first = (int(ready) // 60 + 1) * 60
            return first, first + args.minutes * 60 - 1
        return lambda after: (expression, window)

    for name, label, choose in [("fixed", "M * * * * (every trigger on one minute)", fixed),
                                ("hash-minute", f"H * * * * ({args.minutes} minutes)", hashed("H * * * *")),
                                ("hash-second", f"H H * * * * ({args.minutes} minutes)", hashed("H H * * * *"))]:
        if name not in args.cases.split(","):
            continue
        stamps, expected, cpu = run_case(args, work, name, choose)
        report(label, stamps, expected, cpu)


main()
