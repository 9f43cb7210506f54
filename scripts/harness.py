"""What the Python harnesses share: a free port, a process's memory and CPU time, the stamps
that scripts/stamp.c writes, and percentiles."""
import os
import socket

TICKS = os.sysconf("SC_CLK_TCK")


def free_port():
    """A TCP port on 127.0.0.1 nobody listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def read_stamps(path):
    """(slot, lateness in ms) of each line `SLOT STARTED_NS` that scripts/stamp.c appended."""
    result = []
    if os.path.exists(path):
        for line in open(path):
            slot, started = line.split()
            result.append((int(slot), (int(started) - int(slot) * 1_000_000_000) / 1e6))
    return result


def rss_mib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid):
    """The process's own CPU time (user + system), its children not included."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS
