#!/usr/bin/env bash
# Style and warnings, as CI checks them: swift-format lint (.swift-format;
# Tests/.swift-format also allows force unwraps and force tries), clang-format
# on the C (.clang-format), and a build of Burrow's own targets, tests
# included, with warnings as errors (BURROW_WARNINGS_AS_ERRORS=1, read by
# Package.swift; dependencies keep their warnings).
#
# Usage: Scripts/check.sh [--fix]   (--fix: format in place, then check)
set -euo pipefail
cd "$(dirname "$0")/.."
c_files=$(git ls-files '*.c' '*.h')
case "${1:-}" in
--fix)
    swift-format format -i -r Sources Tests Package.swift
    clang-format -i $c_files
    ;;
"") ;;
*) echo "usage: Scripts/check.sh [--fix]" >&2; exit 2 ;;
esac
echo "== swift-format lint"
swift-format lint --strict -r Sources Tests Package.swift
echo "== clang-format"
clang-format --dry-run --Werror $c_files
echo "== build with warnings as errors"
BURROW_WARNINGS_AS_ERRORS=1 swift build --build-tests
