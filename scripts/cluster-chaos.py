#!/usr/bin/env python3
"""Cluster chaos: three daemons on one PostgreSQL, a dozen every-second triggers, faults, then checks.

Usage: scripts/with-postgres.sh scripts/cluster-chaos.py [--minutes 10] [--seed N] [--belfry PATH]

Needs root (each daemon runs in a UTS namespace of its own, so that each is a host of its own
and nothing one node does to its processes can reach another's, as on separate machines), and
the server of scripts/with-postgres.sh ($BELFRY_TEST_POSTGRES_URL, $BELFRY_TEST_POSTGRES_CTL to
restart it).

Each node reaches PostgreSQL through a TCP proxy of the harness: a partition stops the proxy
relaying that node's bytes (both ways, connections kept open, new ones held), as a cut cable does.
Triggers: six fast jobs (0-0.3 s), three slow ones (2-4 s, several in flight), three flaky ones
(the first attempt fails, retried after 1 s), every second; and a long one (12 s, every 5 s,
kill_grace 2 s), longer than a lease plus its kill_grace. Each job takes an exclusive lock named after its
run for its whole life and records an overlap when another attempt of the same run holds it.

Faults, one at a time with quiet time between: SIGKILL of a node (restarted 2-6 s later), SIGSTOP
of a node shorter than its lease and longer than it (then SIGCONT), a partition of a node from
the database for 8-15 s, and a PostgreSQL restart. After the faults all three nodes run for 30 s
so that lost nodes are taken over, then stop. Checks:
  - no slot recorded twice; every second from each trigger's first slot to its last is a run or
    a missed/skipped record (none unaccounted);
  - no two attempts of one run alive at once (the jobs' own locks), apart from the SIGSTOP case,
    which is counted and reported on its own: a frozen node cannot take its jobs down while
    frozen, and a survivor resumes them lease + kill_grace after its last renewal;
  - no run left queued or running by a node that is gone;
  - failover lateness: after each SIGKILL, the largest slot->first-start lateness of the slots
    that came due in the 20 s after it, and of the runs the lost node had claimed;
  - the database's own consistency (attempts of existing runs, final runs finished).
Exits non-zero when a check fails.
"""
import argparse
import os
import random
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

JOB = """exec 9>>"{dir}/locks/$BELFRY_RUN_ID"; flock -n 9 || echo "$BELFRY_RUN_ID $BELFRY_ATTEMPT $(hostname) $(date +%s)" >> "{dir}/overlaps"; """


def schedules(directory):
    # A queue wide enough for the load (13 triggers keep ~17 runs in flight): the harness is
    # about failover, not about waiting in a queue.
    lines = ["queues: { wide: { concurrency: 100 } }", "environment: { name: chaos, queue: wide }", "tasks:"]
    lock = JOB.format(dir=directory)
    for i in range(6):
        lines += [f"  - name: fast{i}", f"    command: {{ shell: '{lock}sleep 0.$((RANDOM % 4))' }}",
                  "    triggers: [{ name: each_second, cron: \"* * * * * *\" }]"]
    for i in range(3):
        lines += [f"  - name: slow{i}", f"    command: {{ shell: '{lock}sleep $((2 + RANDOM % 3))' }}",
                  "    kill_grace: 2s",
                  "    triggers: [{ name: each_second, cron: \"* * * * * *\" }]"]
    lines += ["  - name: long", f"    command: {{ shell: '{lock}sleep 12' }}", "    kill_grace: 2s",
              "    triggers: [{ name: every_5s, every: 5s }]"]
    for i in range(3):
        lines += [f"  - name: flaky{i}", f"    command: {{ shell: '{lock}test \"$BELFRY_ATTEMPT\" -gt 1' }}",
                  "    retries: { count: 2, backoff: { initial: 1s, jitter: 0 } }",
                  "    triggers: [{ name: each_second, cron: \"* * * * * *\" }]"]
    return "\n".join(lines) + "\n"


class Proxy:
    """A TCP relay to the database that can be cut (partition) and healed."""

    def __init__(self, target):
        self.target = target
        self.cut = threading.Event()
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.pairs = []
        self.lock = threading.Lock()
        self.pending = []
        threading.Thread(target=self.accept, daemon=True).start()
        threading.Thread(target=self.relay, daemon=True).start()

    def accept(self):
        while True:
            client, _ = self.listener.accept()
            with self.lock:
                self.pending.append(client)

    def relay(self):
        while True:
            if not self.cut.is_set():
                with self.lock:
                    pending, self.pending = self.pending, []
                for client in pending:
                    try:
                        upstream = socket.create_connection(self.target)
                        self.pairs.append((client, upstream))
                    except OSError:
                        client.close()
            if self.cut.is_set() or not self.pairs:
                time.sleep(0.01)
                continue
            sockets = [s for pair in self.pairs for s in pair]
            readable, _, _ = select.select(sockets, [], [], 0.05)
            for s in readable:
                pair = next((p for p in self.pairs if s in p), None)
                if pair is None:  # closed with its partner just now
                    continue
                other = pair[1] if s is pair[0] else pair[0]
                try:
                    data = s.recv(65536)
                except OSError:
                    data = b""
                if not data:
                    for x in pair:
                        x.close()
                    self.pairs.remove(pair)
                    continue
                try:
                    other.sendall(data)
                except OSError:
                    pass


def psql(url, sql):
    return subprocess.run(["psql", "-qXAt", "-F", "\t", url, "-c", sql], check=True, capture_output=True, text=True).stdout.strip()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--belfry", default=os.path.join(ROOT, ".build/release/belfry"))
    args = parser.parse_args()
    random.seed(args.seed)
    admin = os.environ.get("BELFRY_TEST_POSTGRES_URL")
    ctl = os.environ.get("BELFRY_TEST_POSTGRES_CTL")
    if not admin or not ctl:
        sys.exit("cluster-chaos.py: run it under scripts/with-postgres.sh")
    if os.geteuid() != 0:
        sys.exit("cluster-chaos.py: needs root (a UTS namespace per node)")
    name = f"chaos_{args.seed}_{int(time.time())}"
    psql(admin, f"CREATE DATABASE {name}")
    parsed = urllib.parse.urlparse(admin)
    target = (parsed.hostname, parsed.port)
    work = tempfile.mkdtemp(prefix="belfry-cluster-chaos.")
    os.makedirs(f"{work}/schedules")
    os.makedirs(f"{work}/locks")
    open(f"{work}/overlaps", "w").close()
    with open(f"{work}/schedules/chaos.yaml", "w") as f:
        f.write(schedules(work))
    proxies = [Proxy(target) for _ in range(3)]
    urls = [f"postgresql://{parsed.username}@127.0.0.1:{p.port}/{name}?sslmode=disable" for p in proxies]
    direct = f"postgresql://{parsed.username}@{parsed.hostname}:{parsed.port}/{name}?sslmode=disable"
    subprocess.run([args.belfry, "deploy", "--database", direct, f"{work}/schedules"], check=True, capture_output=True)

    processes = [None, None, None]
    logs = [open(f"{work}/node{i + 1}.log", "ab") for i in range(3)]

    def start(i):
        command = (f"hostname host{i + 1} && exec {args.belfry} daemon --database '{urls[i]}' --node-name node{i + 1} "
                   f"--log-format json {work}/schedules")
        environment = dict(os.environ, XDG_STATE_HOME=f"{work}/state{i + 1}")
        processes[i] = subprocess.Popen(["unshare", "--uts", "sh", "-c", command], stdout=logs[i], stderr=logs[i], env=environment)

    for i in range(3):
        start(i)
    time.sleep(5)
    events = []
    log = []

    def note(text):
        stamp = time.time()
        log.append((stamp, text))
        print(f"{time.strftime('%H:%M:%S')} {text}", flush=True)

    faults = ["kill", "kill", "kill", "stop_short", "stop_long", "stop_long", "partition", "partition", "pg_restart"]
    deadline = time.time() + args.minutes * 60 - 40
    kinds = []
    while time.time() < deadline:
        if not kinds:
            kinds = faults[:]
            random.shuffle(kinds)
        kind = kinds.pop()
        node = random.randrange(3)
        if kind == "kill":
            note(f"SIGKILL node{node + 1}")
            processes[node].send_signal(signal.SIGKILL)
            processes[node].wait()
            events.append(("kill", time.time(), node))
            time.sleep(random.uniform(2, 6))
            start(node)
            note(f"restarted node{node + 1}")
        elif kind in ("stop_short", "stop_long"):
            pause = random.uniform(2, 3) if kind == "stop_short" else random.uniform(8, 12)
            note(f"SIGSTOP node{node + 1} for {pause:.1f} s")
            # The daemon only: its jobs run on, as a frozen process's children do.
            os.kill(daemon_pid(processes[node]), signal.SIGSTOP)
            time.sleep(pause)
            os.kill(daemon_pid(processes[node]), signal.SIGCONT)
            events.append((kind, time.time(), node))
            note(f"SIGCONT node{node + 1}")
        elif kind == "partition":
            cut = random.uniform(8, 15)
            note(f"partition node{node + 1} from the database for {cut:.1f} s")
            proxies[node].cut.set()
            time.sleep(cut)
            proxies[node].cut.clear()
            events.append(("partition", time.time(), node))
            note(f"healed node{node + 1}")
        else:
            note("PostgreSQL restart")
            # The new server must not hold this script's pipes: its log goes to a file.
            subprocess.run(ctl.split() + ["restart", "-m", "fast", "-w", "-l", os.path.dirname(ctl.split()[-1]) + "/server.log"], check=True,
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            events.append(("pg_restart", time.time(), None))
            note("PostgreSQL back")
        time.sleep(random.uniform(12, 20))
    note("faults over; 30 s of calm")
    time.sleep(30)
    end = int(time.time()) - 10
    alive = psql(direct, "SELECT count(*) FROM node WHERE lease_until > now()")
    leftover = psql(direct, "SELECT count(*) FROM run r WHERE r.state IN ('queued', 'running') AND NOT EXISTS "
                            "(SELECT 1 FROM node n WHERE n.id = r.node_id AND n.lease_until > now())")
    for process in processes:
        process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            process.kill()

    failures = []
    twice = psql(direct, 'SELECT count(*) FROM (SELECT 1 FROM run WHERE slot IS NOT NULL GROUP BY task, "trigger", slot HAVING count(*) > 1) x')
    if twice != "0":
        failures.append(f"{twice} slots recorded twice")
    gaps = psql(direct, f"""
        SELECT t.task, count(*) FROM (SELECT task, "trigger", min(slot) AS first FROM run WHERE task <> 'chaos.long' GROUP BY 1, 2) t,
          generate_series(t.first, {end}) s
        WHERE NOT EXISTS (SELECT 1 FROM run r WHERE r.task = t.task AND r."trigger" = t."trigger" AND r.slot = s)
        GROUP BY t.task""")
    if gaps:
        failures.append(f"slots unaccounted: {gaps}")
    long_gaps = psql(direct, """SELECT count(*) FROM (SELECT slot - lag(slot) OVER (ORDER BY slot) AS step FROM run
                                WHERE task = 'chaos.long') x WHERE step <> 5""")
    if long_gaps != "0":
        failures.append(f"{long_gaps} gaps between the 5-s slots of chaos.long")
    overlaps = [line.split() for line in open(f"{work}/overlaps").read().split("\n") if line]
    # A frozen node cannot take its jobs down while frozen: overlaps that start during a freeze
    # longer than the lease, or up to the longest job after it, are that case, reported apart.
    freezes = [(at, kind) for kind, at, _ in events if kind == "stop_long"]
    frozen = [o for o in overlaps if any(at - 15 <= int(o[3]) <= at + 15 for at, _ in freezes)]
    others = [o for o in overlaps if o not in frozen]
    print(f"overlapping attempts: {len(others)} outside freezes, {len(frozen)} after a freeze longer than the lease"
          + (f" (runs {sorted({o[0] for o in frozen})})" if frozen else ""))
    if others:
        failures.append(f"{len(others)} attempts started while another attempt of the same run was alive: {others[:5]}")
    if leftover != "0":
        failures.append(f"{leftover} runs left queued or running by nodes that are gone")
    broken = psql(direct, "SELECT count(*) FROM run WHERE state NOT IN ('queued', 'running') AND finished_at IS NULL")
    if broken != "0":
        failures.append(f"{broken} final runs without finished_at")

    total = psql(direct, "SELECT count(*), count(*) FILTER (WHERE state = 'succeeded'), count(*) FILTER (WHERE state = 'missed'), "
                         "count(*) FILTER (WHERE state = 'failed') FROM run")
    print(f"runs (all, succeeded, missed, failed): {total.replace(chr(9), ', ')}; nodes alive before stop: {alive}")
    print(psql(direct, "SELECT node_name, count(*) FROM run WHERE node_name IS NOT NULL GROUP BY 1 ORDER BY 1").replace("\t", ": ").replace("\n", ", "))
    print("runs resumed after an interruption (node lost or fenced):", psql(direct, "SELECT count(*) FROM run WHERE system_retries > 0"))
    print("reasons:", psql(direct, "SELECT coalesce(reason, '-'), count(*) FROM run WHERE state <> 'succeeded' GROUP BY 1 ORDER BY 2 DESC LIMIT 8")
          .replace("\t", ": ").replace("\n", "; "))
    worst_new = 0.0
    worst_resumed = 0.0
    for kind, at, node in events:
        if kind != "kill":
            continue
        row = psql(direct, f"""
            SELECT coalesce(max(a.started_at - r.slot * 1000), 0) FROM run r JOIN attempt a ON a.run_id = r.id AND a.number = 1
            WHERE r.task LIKE 'chaos.fast%' AND r.slot BETWEEN {int(at)} AND {int(at) + 20}""")
        # Runs the lost node had started: resumed by another node once its lease expired (+ kill_grace for running ones).
        resumed = psql(direct, f"""
            SELECT coalesce(max(a.started_at - r.slot * 1000), 0) FROM run r
              JOIN attempt first ON first.run_id = r.id AND first.number = 1 AND first.node_name = 'node{node + 1}'
              JOIN attempt a ON a.run_id = r.id AND a.number > 1 AND a.node_name <> 'node{node + 1}'
            WHERE r.slot BETWEEN {int(at) - 10} AND {int(at)} AND r.system_retries > 0""")
        worst_new = max(worst_new, float(row) / 1000)
        worst_resumed = max(worst_resumed, float(resumed) / 1000)
        print(f"SIGKILL node{node + 1}: slots due in the 20 s after it started at most {float(row) / 1000:.2f} s late; "
              f"the runs it had started were resumed elsewhere at most {float(resumed) / 1000:.2f} s after their slot")
    lateness = psql(direct, """
        SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY a.started_at - r.slot * 1000),
               percentile_disc(0.99) WITHIN GROUP (ORDER BY a.started_at - r.slot * 1000)
        FROM run r JOIN attempt a ON a.run_id = r.id AND a.number = 1 WHERE r.task LIKE 'chaos.fast%'""")
    print(f"slot->first start over the whole run (ms): p50, p99 = {lateness.replace(chr(9), ', ')}")
    late = psql(direct, """
        SELECT to_char(to_timestamp(r.slot), 'HH24:MI:SS'), r.task, a.started_at - r.slot * 1000, r.queued_at - r.slot * 1000,
               a.node_name, r.system_retries
        FROM run r JOIN attempt a ON a.run_id = r.id AND a.number = 1 WHERE r.task LIKE 'chaos.fast%' AND a.started_at - r.slot * 1000 > 2000
        ORDER BY r.slot""")
    if late:
        print("fast slots first started more than 2 s late (slot, task, start ms, claim ms, node, system retries):")
        for line in late.splitlines():
            print("  " + line.replace("\t", "  "))
    print(f"work directory: {work} (node logs)")
    if failures:
        print("FAILED:\n  " + "\n  ".join(failures))
        sys.exit(1)
    print("ok: no slot twice, none unaccounted, no overlapping attempts, nothing left behind")


def daemon_pid(process):
    """The daemon's pid: `unshare` execs `sh`, which execs belfry, so it is the child's own pid."""
    return process.pid


if __name__ == "__main__":
    main()
