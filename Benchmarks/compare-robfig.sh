#!/usr/bin/env bash
# Next-slot time per call, Belfry against robfig/cron v3, measured side by side in one run with
# the same method (median of 15 batches of 100,000 calls, walking slot to slot through 2026-2035);
# then `belfry next EXPR --timezone ZONE --after 2026-01-01T00:00:00Z --count 50000` against a Go
# program doing the same with robfig (robfig-next/main.go), each as a whole process, start-up and
# printing included (hyperfine, release builds: scripts/build-release.sh).
# Needs Debian's golang-go, golang-github-robfig-cron-dev and hyperfine (installed when missing).
# Usage, from the repository root: Benchmarks/compare-robfig.sh
set -euo pipefail
cd "$(dirname "$0")"
missing=()
command -v go >/dev/null || missing+=(golang-go)
[ -d /usr/share/gocode/src/github.com/robfig/cron ] || missing+=(golang-github-robfig-cron-dev)
command -v hyperfine >/dev/null || missing+=(hyperfine)
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
GO111MODULE=off GOPATH=/usr/share/gocode go build -o "$work/robfig-timer" robfig/main.go
GO111MODULE=off GOPATH=/usr/share/gocode go build -o "$work/robfig-next" robfig-next/main.go
swift build -c release --product NextSlotTimer >/dev/null 2>&1 || swift build -c release --product NextSlotTimer
"$(swift build -c release --show-bin-path)/NextSlotTimer" > "$work/belfry.tsv"
"$work/robfig-timer" > "$work/robfig.tsv"
echo "| expression | zone | Belfry ns/call | robfig/cron v3 ns/call | Belfry faster by |"
echo "|---|---|---:|---:|---:|"
paste "$work/belfry.tsv" "$work/robfig.tsv" | while IFS=$'\t' read -r expr zone ours _ _ _ theirs timed; do
  note=""
  [ "$timed" != "$expr" ] && note=" (robfig has no \`L\`; timed as \`$timed\`)"
  ratio=$(awk -v a="$ours" -v b="$theirs" 'BEGIN { printf "%.0f×", b / a }')
  echo "| \`$expr\` | $zone | $ours | $theirs$note | $ratio |"
done

../scripts/build-release.sh --product belfry >/dev/null 2>&1 || ../scripts/build-release.sh --product belfry
belfry=../.build/release/belfry
echo
echo "| \`next --count 50000\`, whole process | zone | Belfry | robfig/cron v3 | Belfry faster by |"
echo "|---|---|---:|---:|---:|"
for case in "30 2 * * *|America/New_York" "*/15 * * * *|UTC" "0 9 * * 1-5|Europe/Berlin"; do
  expr=${case%|*} zone=${case#*|}
  hyperfine -N --warmup 3 --runs 30 --export-json "$work/process.json" \
    "$belfry next '$expr' --timezone $zone --after 2026-01-01T00:00:00Z --count 50000" \
    "$work/robfig-next '$expr' $zone 2026-01-01T00:00:00Z 50000" >/dev/null
  python3 - "$expr" "$zone" "$work/process.json" <<'PY'
import json, sys
expr, zone, path = sys.argv[1:]
ours, theirs = (r["mean"] * 1000 for r in json.load(open(path))["results"])
print(f"| `{expr}` | {zone} | {ours:.1f} ms | {theirs:.1f} ms | {theirs / ours:.1f}× |")
PY
done
