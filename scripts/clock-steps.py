#!/usr/bin/env python3
"""Wall-clock steps: the real daemon's wall clock set back one hour, then forward three, while it runs.

Usage: scripts/clock-steps.py [--belfry PATH] [--phase 30]

The daemon runs under libfaketime with a clock that follows the real one plus an offset read from
a file on every call (FAKETIME_TIMESTAMP_FILE, FAKETIME_NO_CACHE); the monotonic clock is left
alone (FAKETIME_DONT_FAKE_MONOTONIC), as when NTP or an operator steps a real machine's clock.
(The `faketime` wrapper is used only to set libfaketime up; FAKETIME itself is removed before the
daemon starts, or the file would be ignored: docs/NOTES.md.)

Three every-10-seconds triggers, catch_up none, latest and all. Each phase lasts PHASE seconds:
  1. offset 0: the triggers run;
  2. offset -1 h: the slots of the hour before were all evaluated, so nothing may run;
  3. offset +2 h (three hours forward): the slots jumped over follow catch-up, and the triggers
     run on time again.
Checks: no slot twice; every 10-second slot from the first to the last recorded (a run, or a missed
record); nothing recorded while the clock was behind; in the jumped-over gap, slots found within
60 s of their instant run on time (SPEC §4, on-time window), older ones as the policy says; the
daemon logs both jumps.
"""
import argparse
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
POLICIES = ["none", "latest", "all"]
PERIOD = 10
ON_TIME = 60
CAP = 100  # catch_up: all's default limit


def set_offset(path, seconds):
    # Written whole, then renamed: the daemon never reads half a line.
    with open(path + ".new", "w") as f:
        f.write(f"{'+' if seconds >= 0 else '-'}{abs(seconds)}\n")
    os.replace(path + ".new", path)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--belfry", default=os.path.join(ROOT, ".build/release/belfry"))
    parser.add_argument("--phase", type=int, default=30, help="seconds of real time per phase")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="belfry-clock-")
    os.makedirs(os.path.join(work, "schedules"))
    with open(os.path.join(work, "schedules", "steps.yaml"), "w") as f:
        f.write("tasks:\n  - name: job\n    command: [\"/bin/true\"]\n    triggers:\n")
        for policy in POLICIES:
            f.write(f"      - {{ name: {policy}, cron: \"*/{PERIOD} * * * * *\", catch_up: {policy} }}\n")
    offset_file = os.path.join(work, "offset")
    set_offset(offset_file, 0)
    database = os.path.join(work, "belfry.sqlite")
    log_path = os.path.join(work, "daemon.log")
    environment = dict(os.environ, FAKETIME_TIMESTAMP_FILE=offset_file, FAKETIME_NO_CACHE="1",
                       FAKETIME_DONT_FAKE_MONOTONIC="1")
    print(f"work directory {work}; {args.phase} s per phase", flush=True)
    with open(log_path, "w") as log:
        daemon = subprocess.Popen(["faketime", "-f", "+0", "env", "-u", "FAKETIME", args.belfry, "daemon",
                                   "--schedules", os.path.join(work, "schedules"), "--database", database],
                                  stderr=log, env=environment, start_new_session=True)

    def count():
        with sqlite3.connect(database) as db:
            return db.execute("SELECT count(*) FROM run").fetchone()[0]

    time.sleep(args.phase)
    before_back = count()
    set_offset(offset_file, -3600)
    stepped_back = time.time()
    time.sleep(args.phase)
    during_back = count()
    set_offset(offset_file, 2 * 3600)
    jumped = time.time() + 2 * 3600  # the fake time of the forward step
    time.sleep(args.phase)
    os.killpg(daemon.pid, signal.SIGTERM)
    daemon.wait()

    failures = []
    if before_back == 0:
        failures.append("nothing ran before the steps")
    if during_back != before_back:
        failures.append(f"{during_back - before_back} runs recorded while the clock was an hour behind")
    db = sqlite3.connect(database)
    for policy in POLICIES:
        rows = db.execute('SELECT slot, state, origin, queued_at FROM run WHERE "trigger" = ? ORDER BY slot', (policy,)).fetchall()
        slots = [row[0] for row in rows]
        if len(set(slots)) != len(slots):
            failures.append(f"{policy}: a slot recorded twice")
        expected = list(range(slots[0], slots[-1] + 1, PERIOD)) if slots else []
        if slots != expected:
            failures.append(f"{policy}: {len(expected) - len(set(slots) & set(expected))} slots missing, "
                            f"{len(set(slots) - set(expected))} unexpected")
        # The gap: the slots after the last one evaluated before the steps, up to the moment the
        # daemon noticed the forward step (when it recorded the first of them).
        last_before = max((row[0] for row in rows if row[3] / 1000 <= stepped_back), default=0)
        noticed = min((row[3] for row in rows if row[0] > last_before), default=0) / 1000
        gap = [row[:3] for row in rows if last_before < row[0] <= noticed]
        if not jumped <= noticed < jumped + 2:
            failures.append(f"{policy}: the forward step noticed {noticed - jumped:.1f} s after it")
        scheduled = [row for row in gap if row[2] == "scheduled" and row[1] != "missed"]
        caught_up = [row for row in gap if row[2] == "catch-up"]
        missed = [row for row in gap if row[1] == "missed"]
        # On time: found within 60 s of its instant, in whole seconds as the daemon counts.
        ok = all(row[1] == "succeeded" and int(noticed) - row[0] <= ON_TIME for row in scheduled) \
            and len(scheduled) <= ON_TIME // PERIOD + 1 and len(missed) + len(scheduled) + len(caught_up) == len(gap)
        if policy == "all":  # the newest missed slots run, up to the limit with the on-time runs counted
            ok = ok and len(scheduled) + len(caught_up) == min(CAP, len(gap)) \
                and all(row[1] == "succeeded" for row in caught_up) and gap == missed + caught_up + scheduled
        else:  # none; latest: an on-time run in the gap is the latest run, so the older ones are missed
            ok = ok and not caught_up
        print(f"{policy:>6}: {len(rows)} slots recorded; forward step noticed after {noticed - jumped:.2f} s; "
              f"gap of {len(gap)} slots: {len(scheduled)} on time, "
              f"{len(caught_up)} caught up, {len(missed)} missed{'' if ok else '  WRONG'}", flush=True)
        if not ok:
            failures.append(f"{policy}: the gap does not follow catch_up {policy}")
    with open(log_path) as f:
        log = f.read()
    jumps = [line for line in log.splitlines() if "clock" in line and "jump" in line]
    print("daemon log:\n  " + "\n  ".join(jumps), flush=True)
    if len(jumps) < 2:
        failures.append(f"the daemon logged {len(jumps)} clock jumps, not 2")
    integrity = db.execute("PRAGMA integrity_check").fetchone()[0]
    if integrity != "ok":
        failures.append(f"integrity_check: {integrity}")
    if failures:
        print("FAILED:\n  " + "\n  ".join(failures))
        sys.exit(1)
    print("all checks passed")


main()
