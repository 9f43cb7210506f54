#!/usr/bin/env python3
"""Writes a schedules directory with many triggers, for the deploy and listing benchmarks.

Usage: Benchmarks/generate-schedules.py DIR [TRIGGERS]   (default 100000)
A mix of cron expressions in 20 zones and fixed rates: 100 files, each one environment of
tasks with 10 triggers.
"""
import os
import sys

ZONES = ["UTC", "America/New_York", "America/Los_Angeles", "America/Chicago", "America/Sao_Paulo",
         "America/Santiago", "Europe/London", "Europe/Berlin", "Europe/Dublin", "Europe/Moscow",
         "Africa/Cairo", "Asia/Tehran", "Asia/Kolkata", "Asia/Kathmandu", "Asia/Tokyo",
         "Australia/Sydney", "Australia/Lord_Howe", "Pacific/Auckland", "Pacific/Chatham", "Pacific/Apia"]
CRONS = ["*/15 * * * *", "30 2 * * *", "0 9 * * 1-5", "*/5 9-17 * * 1-5", "0 0 L * *", "0 */2 * * *",
         "15 4 1,15 * *", "0 12 * * MON#1", "45 23 * * 5L", "*/10 * * * * *"]

def main():
    directory = sys.argv[1]
    total = int(sys.argv[2]) if len(sys.argv) > 2 else 100_000
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
                    lines.append(f"      - {{ name: t{k}, every: {60 * (1 + n % 90)}s }}\n")
                else:
                    cron = CRONS[n % len(CRONS)]
                    zone = ZONES[n % len(ZONES)]
                    lines.append(f"      - {{ name: t{k}, cron: \"{cron}\", timezone: {zone} }}\n")
                n += 1
        with open(os.path.join(directory, f"env-{f:03d}.yaml"), "w") as out:
            out.write("".join(lines))
    print(f"{n} triggers in {files} files under {directory}")

main()
