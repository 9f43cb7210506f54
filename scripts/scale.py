#!/usr/bin/env python3
"""The daemon with 100,000 active triggers: start-up to READY, resident memory, idle CPU, and
memory over a long stretch of firing.

Usage: scripts/scale.py [--triggers 100000] [--idle 60] [--firing SECONDS] [--belfry PATH]
       scripts/with-postgres.sh scripts/scale.py --postgres-nodes 3 [--triggers 100000]

1. Generates TRIGGERS triggers with Benchmarks/generate-schedules.py --quiet (cron expressions
   in 20 zones and fixed rates, none due for weeks) into a fresh work directory.
2. Starts the daemon twice under a notify socket of our own (as systemd would): the first start
   deploys into an empty database, the second is a restart with the same files. Prints the time
   from exec to READY=1 for each, and VmRSS at READY.
3. Idle: CPU time (user + system, from /proc/PID/stat) and VmRSS over IDLE seconds.
4. With --firing: adds 1,000 triggers `* * * * *` running /bin/true (a burst of 1,000 runs every
   minute) and samples VmRSS every 10 s for SECONDS: prints the samples' first, last and max
   after the first minute, and the runs done.
With --postgres-nodes N instead: `belfry deploy` of the triggers into a fresh PostgreSQL database
(timed), then N daemons started at once on it, each under a notify socket of its own: time to
READY and VmRSS at READY of each, then their idle CPU.
"""
import argparse
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time

from harness import cpu_seconds, rss_mib
from test_postgres import fresh_database

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def start(args, schedules, database, work, name="notify.sock", extra=()):
    path = os.path.join(work, name)
    if os.path.exists(path):
        os.remove(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(120)
    env = dict(os.environ, NOTIFY_SOCKET=path)
    log = open(os.path.join(work, "daemon.log"), "a")
    begin = time.monotonic()
    daemon = subprocess.Popen([args.belfry, "daemon", "--schedules", schedules, "--database", database, *extra],
                              stderr=log, env=env)
    while True:
        message = sock.recv(4096).decode()
        if message.startswith("READY=1"):
            break
    ready = time.monotonic() - begin
    sock.close()  # as if systemd had gone: the daemon must not wait for a reader
    return daemon, ready, message.split("\n")[1] if "\n" in message else "", None


def stop(daemon):
    daemon.send_signal(signal.SIGTERM)
    daemon.wait()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--triggers", type=int, default=100_000)
    parser.add_argument("--idle", type=int, default=60)
    parser.add_argument("--firing", type=int, default=0)
    parser.add_argument("--belfry", default=os.path.join(ROOT, ".build/release/belfry"))
    parser.add_argument("--postgres-nodes", type=int, default=0)
    args = parser.parse_args()

    work = tempfile.mkdtemp(prefix="belfry-scale-")
    schedules = os.path.join(work, "schedules")
    database = os.path.join(work, "belfry.sqlite")
    subprocess.run([sys.executable, os.path.join(ROOT, "Benchmarks/generate-schedules.py"), schedules,
                    str(args.triggers), "--quiet"], check=True)
    print(f"work directory {work}")
    if args.postgres_nodes:
        return postgres(args, schedules, work)

    daemon, ready, status, _ = start(args, schedules, database, work)
    print(f"first start (deploys into an empty database): READY after {ready:.2f} s, VmRSS {rss_mib(daemon.pid):.0f} MiB; {status}")
    stop(daemon)
    daemon, ready, status, _ = start(args, schedules, database, work)
    print(f"restart (same files): READY after {ready:.2f} s, VmRSS {rss_mib(daemon.pid):.0f} MiB; {status}")

    if args.idle:
        time.sleep(2)
        cpu, rss = cpu_seconds(daemon.pid), rss_mib(daemon.pid)
        time.sleep(args.idle)
        print(f"idle {args.idle} s: CPU {cpu_seconds(daemon.pid) - cpu:.2f} s, VmRSS {rss:.0f} -> {rss_mib(daemon.pid):.0f} MiB")
    stop(daemon)

    if args.firing:
        lines = ["environment:\n  name: firing\ntasks:\n"]
        for i in range(1000):
            lines.append(f"  - {{ name: job-{i:04d}, command: [\"/bin/true\"], triggers: [{{ name: minute, cron: \"* * * * *\" }}] }}\n")
        with open(os.path.join(schedules, "firing.yaml"), "w") as f:
            f.write("".join(lines))
        daemon, ready, status, _ = start(args, schedules, database, work)
        samples = []
        begin = time.monotonic()
        while time.monotonic() - begin < args.firing:
            time.sleep(10)
            samples.append((time.monotonic() - begin, rss_mib(daemon.pid)))
        stop(daemon)
        steady = [rss for t, rss in samples if t >= 60] or [rss for _, rss in samples]
        runs = sqlite3.connect(database).execute("SELECT count(*), sum(state = 'succeeded') FROM run").fetchone()
        print(f"firing {args.firing} s: VmRSS after the first minute {steady[0]:.0f} MiB, at the end {steady[-1]:.0f} MiB, "
              f"max {max(steady):.0f} MiB; {runs[0]} runs recorded, {runs[1]} succeeded")
        with open(os.path.join(work, "rss.tsv"), "w") as f:
            f.writelines(f"{t:.0f}\t{rss:.1f}\n" for t, rss in samples)


def postgres(args, schedules, work):
    url = fresh_database("scale.py", "scale")
    begin = time.monotonic()
    subprocess.run([args.belfry, "deploy", "--database", url, schedules], check=True, stdout=subprocess.DEVNULL)
    print(f"belfry deploy of {args.triggers} triggers into PostgreSQL: {time.monotonic() - begin:.2f} s")
    threads = []
    results = [None] * args.postgres_nodes
    import threading

    def one(i):
        results[i] = start(args, schedules, url, work, name=f"notify{i}.sock", extra=("--node-name", f"node{i + 1}"))

    for i in range(args.postgres_nodes):
        threads.append(threading.Thread(target=one, args=(i,)))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for i, (daemon, ready, status, _) in enumerate(results):
        print(f"node{i + 1}, started with the others: READY after {ready:.2f} s, VmRSS {rss_mib(daemon.pid):.0f} MiB; {status}")
    if args.idle:
        time.sleep(2)
        before = [cpu_seconds(d.pid) for d, _, _, _ in results]
        time.sleep(args.idle)
        after = [cpu_seconds(d.pid) for d, _, _, _ in results]
        print(f"idle {args.idle} s: CPU per node " + ", ".join(f"{b - a:.2f} s" for a, b in zip(before, after)))
    for daemon, _, _, _ in results:
        stop(daemon)


main()
