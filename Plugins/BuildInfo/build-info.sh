#!/bin/sh
# build-info.sh ROOT OUTPUT: writes OUTPUT, a Swift file with this checkout's commit and the
# compiler's version (see plugin.swift). Outside a git checkout the commit is "unknown".
set -eu
commit=$(git -C "$1" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
swift=$(swiftc --version 2>/dev/null | sed -n 's/.*Swift version \([^ ]*\).*/\1/p' | head -n 1)
printf '// Generated at build time by Plugins/BuildInfo.\nlet buildCommit = "%s"\nlet buildSwiftVersion = "%s"\n' \
    "$commit" "${swift:-unknown}" > "$2.tmp"
mv "$2.tmp" "$2"
