#!/usr/bin/env bash
# Next-slot time per call, Belfry against robfig/cron v3, measured side by side in one run with
# the same method (median of 15 batches of 100,000 calls, walking slot to slot through 2026-2035).
# Needs Debian's golang-go and golang-github-robfig-cron-dev (installed when missing).
# Usage, from the repository root: Benchmarks/compare-robfig.sh
set -euo pipefail
cd "$(dirname "$0")"
missing=()
command -v go >/dev/null || missing+=(golang-go)
[ -d /usr/share/gocode/src/github.com/robfig/cron ] || missing+=(golang-github-robfig-cron-dev)
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
GO111MODULE=off GOPATH=/usr/share/gocode go build -o "$work/robfig-next" robfig/main.go
swift build -c release --product NextSlotTimer >/dev/null 2>&1 || swift build -c release --product NextSlotTimer
"$(swift build -c release --show-bin-path)/NextSlotTimer" > "$work/belfry.tsv"
"$work/robfig-next" > "$work/robfig.tsv"
echo "| expression | zone | Belfry ns/call | robfig/cron v3 ns/call | Belfry faster by |"
echo "|---|---|---:|---:|---:|"
paste "$work/belfry.tsv" "$work/robfig.tsv" | while IFS=$'\t' read -r expr zone ours _ _ _ theirs timed; do
  note=""
  [ "$timed" != "$expr" ] && note=" (robfig has no \`L\`; timed as \`$timed\`)"
  ratio=$(awk -v a="$ours" -v b="$theirs" 'BEGIN { printf "%.0f×", b / a }')
  echo "| \`$expr\` | $zone | $ours | $theirs$note | $ratio |"
done
