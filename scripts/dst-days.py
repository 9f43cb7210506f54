#!/usr/bin/env python3
"""Accelerated DST days: the real daemon under libfaketime (Debian's `faketime`), sped up.

Usage: scripts/dst-days.py [--speed 120] [--belfry PATH]

Six scenarios run side by side, each a daemon with its own database whose clock starts a few
hours before a DST change and runs SPEED times faster than real time: New York spring-forward
(2026-03-08) and fall-back (2026-11-01), Lord Howe's half-hour changes (2026-04-05 and
2026-10-04), Dublin's (2026-03-29 and 2026-10-25). Each has `30 2 * * *`, `30 1 * * *` and
`*/15 * * * *` in its zone. Afterwards, for each trigger, the runs recorded must be exactly the
slots `belfry next` prints for the window: none missing, none twice, none extra.

Wall-clock steps (back one hour, forward three) are scripts/clock-steps.py.
"""
import argparse
import datetime
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCENARIOS = [
    ("America/New_York", "2026-03-08T04:00:00Z", 6),
    ("America/New_York", "2026-11-01T03:00:00Z", 6),
    ("Australia/Lord_Howe", "2026-04-04T12:00:00Z", 6),
    ("Australia/Lord_Howe", "2026-10-03T12:00:00Z", 6),
    ("Europe/Dublin", "2026-03-28T22:00:00Z", 6),
    ("Europe/Dublin", "2026-10-24T22:00:00Z", 6),
]
TRIGGERS = [("half_past_two", "30 2 * * *"), ("half_past_one", "30 1 * * *"), ("quarterly", "*/15 * * * *")]


def parse(text):
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def faketime_spec(instant, speed):
    return f"@{instant.strftime('%Y-%m-%d %H:%M:%S')} x{speed}"


def expected_slots(belfry, expression, zone, after, through):
    out = subprocess.run([belfry, "next", expression, "--timezone", zone, "--after", after.strftime("%Y-%m-%dT%H:%M:%SZ"),
                          "--count", "200", "--json"], capture_output=True, text=True, check=True).stdout
    slots = [parse(s["slot"] if isinstance(s, dict) else s) for s in json.loads(out)]
    return [s for s in slots if s <= through]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--speed", type=int, default=120)
    parser.add_argument("--belfry", default=os.path.join(ROOT, ".build/release/belfry"))
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="belfry-dst-")
    print(f"work directory {work}; clocks {args.speed}x real time", flush=True)

    daemons = []
    for index, (zone, start, hours) in enumerate(SCENARIOS):
        directory = os.path.join(work, f"{index}")
        os.makedirs(os.path.join(directory, "schedules"))
        with open(os.path.join(directory, "schedules", "dst.yaml"), "w") as f:
            f.write("tasks:\n  - name: job\n    command: [\"/bin/true\"]\n    triggers:\n")
            for name, expression in TRIGGERS:
                f.write(f"      - {{ name: {name}, cron: \"{expression}\", timezone: {zone} }}\n")
        log = open(os.path.join(directory, "daemon.log"), "w")
        # `faketime` runs the daemon as its child: a session of its own lets both be killed.
        process = subprocess.Popen(["faketime", "-f", faketime_spec(parse(start), args.speed), args.belfry, "daemon",
                                    "--schedules", os.path.join(directory, "schedules"),
                                    "--database", os.path.join(directory, "belfry.sqlite")], stderr=log, start_new_session=True)
        daemons.append((process, time.monotonic()))
    longest = max(hours for _, _, hours in SCENARIOS)
    time.sleep(longest * 3600 / args.speed + 5)

    failures = []
    for index, ((zone, start, hours), (process, began)) in enumerate(zip(SCENARIOS, daemons)):
        elapsed = (time.monotonic() - began) * args.speed
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        # Compare up to a little before the fake clock's end (the last wake may not have come).
        after = parse(start)
        through = after + datetime.timedelta(seconds=min(elapsed - 600, hours * 3600))
        db = sqlite3.connect(os.path.join(work, f"{index}", "belfry.sqlite"))
        line = [f"{zone} {start[:10]}:"]
        for name, expression in TRIGGERS:
            recorded = [datetime.datetime.fromtimestamp(slot, datetime.timezone.utc) for slot, in
                        db.execute('SELECT slot FROM run WHERE "trigger" = ? ORDER BY slot', (name,))]
            states = {state for state, in db.execute('SELECT DISTINCT state FROM run WHERE "trigger" = ?', (name,))}
            recorded_in_window = [s for s in recorded if s <= through]
            expected = expected_slots(args.belfry, expression, zone, after, through)
            ok = recorded_in_window == expected and states <= {"succeeded"}
            line.append(f"{name} {len(recorded_in_window)}/{len(expected)}{'' if ok else ' MISMATCH'}")
            if not ok:
                failures.append(f"{zone} {start} {name}: recorded {[s.isoformat() for s in recorded_in_window]} "
                                f"states {states}, expected {[s.isoformat() for s in expected]}")
        print(" ".join(line), flush=True)

    if failures:
        print("FAILED:\n  " + "\n  ".join(failures))
        sys.exit(1)
    print("all checks passed")


main()
