#!/usr/bin/env python3
"""Writes a schedules directory with many triggers, for the deploy and listing benchmarks.

Usage: Benchmarks/generate-schedules.py DIR [TRIGGERS] [--quiet]   (default 100000)
A mix of cron expressions in 20 zones and fixed rates: 100 files, each one environment of
tasks with 10 triggers. --quiet: expressions and rates with no slot due for weeks (on leap
days, New Year, midsummer...; rates of 2000 hours), to measure a daemon with nothing to do.
"""
import os
import sys

ZONES = ["UTC", "America/New_York", "America/Los_Angeles", "America/Chicago", "America/Sao_Paulo",
         "America/Santiago", "Europe/London", "Europe/Berlin", "Europe/Dublin", "Europe/Moscow",
         "Africa/Cairo", "Asia/Tehran", "Asia/Kolkata", "Asia/Kathmandu", "Asia/Tokyo",
         "Australia/Sydney", "Australia/Lord_Howe", "Pacific/Auckland", "Pacific/Chatham", "Pacific/Apia"]
CRONS = ["*/15 * * * *", "30 2 * * *", "0 9 * * 1-5", "*/5 9-17 * * 1-5", "0 0 L * *", "0 */2 * * *",
         "15 4 1,15 * *", "0 12 * * MON#1", "45 23 * * 5L", "*/10 * * * * *"]
QUIET_CRONS = ["0 0 29 2 *", "30 2 1 1 *", "0 9 1 7 *", "15 4 15 3 *", "0 12 * 6 MON#1", "45 23 * 8 5L",
               "0 0 L 5 *", "*/5 9-17 1 4 *", "0 */2 10 9 *", "*/10 * * 2 * 29"]

def main():
    arguments = [a for a in sys.argv[1:] if a != "--quiet"]
    quiet = "--quiet" in sys.argv
    if not 1 <= len(arguments) <= 2 or any(a.startswith("-") for a in arguments):
        sys.exit(__doc__.strip())  # -h, --help, an unknown option or a missing DIR: the usage, exit 1
    crons = QUIET_CRONS if quiet else CRONS
    directory = arguments[0]
    total = int(arguments[1]) if len(arguments) > 1 else 100_000
    os.makedirs(directory, exist_ok=True)
    files = 100
    per_file = total // files
    n = 0
    for f in range(files):
        lines = [f"environment:\n  name: env-{f:03d}\ntasks:\n"]
        for t in range(per_file // 10):
            lines.append(f"  - name: task-{t:04d}\n    command: [\"/bin/true\", \"{f}-{t}\"]\n    triggers:\n")
            for k in range(10):
                if k % 5 == 4:
                    every = 2000 * 3600 + n % 3600 if quiet else 60 * (1 + n % 90)
                    lines.append(f"      - {{ name: t{k}, every: {every}s }}\n")
                else:
                    cron = crons[n % len(crons)]
                    zone = ZONES[n % len(ZONES)]
                    lines.append(f"      - {{ name: t{k}, cron: \"{cron}\", timezone: {zone} }}\n")
                n += 1
        with open(os.path.join(directory, f"env-{f:03d}.yaml"), "w") as out:
            out.write("".join(lines))
    print(f"{n} triggers in {files} files under {directory}")

main()
