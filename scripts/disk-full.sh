#!/usr/bin/env bash
# Disk full and a read-only file system under the daemon (needs root: mounts a 3 MiB tmpfs).
#
# Usage: scripts/disk-full.sh [BELFRY]   (default .build/release/belfry)
# 1. The daemon runs an every-second trigger on the tmpfs; the disk is filled for 6 s, then
#    freed. Expected: one critical line naming the error, one line when it works again, every
#    second recorded exactly once (run or missed), PRAGMA integrity_check ok.
# 2. The file system is remounted read-only: `belfry daemon` refuses to start, saying so.
set -euo pipefail
belfry=$(realpath "${1:-.build/release/belfry}")
mnt=$(mktemp -d /tmp/belfry-diskfull-XXXXXX)
mount -t tmpfs -o size=3m tmpfs "$mnt"
trap 'umount "$mnt" 2>/dev/null; rmdir "$mnt"' EXIT
mkdir "$mnt/schedules"
cat > "$mnt/schedules/t.yaml" <<'YAML'
tasks:
  - name: tick
    command: { shell: 'echo tick $BELFRY_TRIGGER_TIME' }
    triggers: [{ name: each_second, cron: "* * * * * *" }]
YAML
db="$mnt/state/belfry.sqlite"
"$belfry" daemon --schedules "$mnt/schedules" --database "$db" 2> "$mnt.log" &
daemon=$!
sleep 3
dd if=/dev/zero of="$mnt/filler" bs=64k 2>/dev/null || true
echo "disk full: $(df -h "$mnt" | tail -1)"
sleep 6
rm "$mnt/filler"
echo "space back"
sleep 5
kill -TERM $daemon
wait $daemon && echo "daemon exit status 0"
grep -E "critical|error|works again" "$mnt.log" || true
python3 - "$db" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
slots = [r[0] for r in db.execute("SELECT slot FROM run ORDER BY slot")]
print("integrity_check:", db.execute("PRAGMA integrity_check").fetchone()[0])
print("runs by state:", dict(db.execute("SELECT state, count(*) FROM run GROUP BY state").fetchall()))
print(f"{len(slots)} slots recorded over {slots[-1] - slots[0] + 1} s, {len(slots) - len(set(slots))} twice")
sys.exit(0 if len(set(slots)) == len(slots) == slots[-1] - slots[0] + 1 else 1)
PY
mount -o remount,ro "$mnt"
if "$belfry" daemon --schedules "$mnt/schedules" --database "$db"; then echo "started on a read-only file system?"; exit 1; fi
rm -f "$mnt.log"
