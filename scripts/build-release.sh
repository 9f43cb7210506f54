#!/usr/bin/env bash
# The release build of belfry and belfry-daemon (.build/release): `swift build -c release` with
# one compiler flag for every module, the dependencies' included (Package.swift sets flags for
# its own targets only). With it, the metadata of a concrete generic type (a dictionary of
# ArgumentParser's, a set of GRDB's) is made by calling its accessor instead of by demangling its
# name, which checks each of the type's generic requirements (`InputKey: Hashable`) by walking
# all the program's protocol conformances, a few thousand records each time. `belfry next` and
# the listings start about a third faster (docs/performance.md); the binaries grow by 0.2-0.4 %.
#   scripts/build-release.sh [swift build options]     e.g. --product belfry
set -euo pipefail
cd "$(dirname "$0")/.."
exec swift build -c release -Xswiftc -Xfrontend -Xswiftc -disable-concrete-type-metadata-mangled-name-accessors "$@"
