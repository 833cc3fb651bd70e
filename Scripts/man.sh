#!/usr/bin/env bash
# The man pages: burrow(1) and one per subcommand, generated from the
# commands' own --help by swift-argument-parser's generate-manual plugin (so
# they cannot drift from it), plus the hand-written burrowd(8),
# burrow.toml(5) and burrow-profile(5) from docs/man.
#
# Usage: Scripts/man.sh [DIR]   (default .build/man; then: man -l .build/man/burrow.run.1)
# The plugin builds the package in release mode first (minutes the first time).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-.build/man}
mkdir -p "$out"
echo "== generating the command pages (swift package generate-manual)" >&2
swift package generate-manual --multi-page >/dev/null
cp .build/plugins/GenerateManual/outputs/burrow/*.1 "$out/"
cp docs/man/*.5 docs/man/*.8 "$out/"
echo "$out: $(ls "$out" | wc -l) pages" >&2
