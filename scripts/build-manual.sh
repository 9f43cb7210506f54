#!/usr/bin/env bash
# Builds belfry's man pages and shell completions from the command-line definitions themselves
# (swift-argument-parser's generators), so they cannot disagree with `belfry --help`.
#   scripts/build-manual.sh [OUT]        (default OUT: .build/manual)
# OUT/man/*.1: one page per command (man -l OUT/man/belfry.1);
# OUT/completions/belfry.bash, _belfry (zsh), belfry.fish.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-.build/manual}
rm -rf "$out/man" "$out/completions"
mkdir -p "$out/man" "$out/completions"
# A debug build serves: the pages come from the same definitions. (The plugin builds every product
# in the configuration it is given; in release, without scripts/build-release.sh's flag, it would
# replace the release build's programs with slower-starting ones.)
swift package plugin --allow-writing-to-directory "$out/man" generate-manual --configuration debug --multi-page --output-directory "$out/man" >&2
belfry=.build/debug/belfry
# The plugin writes into a directory of its own under the one given.
find "$out/man" -mindepth 2 -name '*.1' -exec mv {} "$out/man/" \;
find "$out/man" -mindepth 1 -type d -empty -delete
# The attempt guard is started by the daemon itself, and `help` is argument-parser's own.
rm -f "$out/man/belfry.guard-attempts.1" "$out/man/belfry.help.1"
"$belfry" --generate-completion-script bash > "$out/completions/belfry.bash"
"$belfry" --generate-completion-script zsh > "$out/completions/_belfry"
"$belfry" --generate-completion-script fish > "$out/completions/belfry.fish"
echo "man pages: $(ls "$out/man" | wc -l) in $out/man; completions in $out/completions" >&2
