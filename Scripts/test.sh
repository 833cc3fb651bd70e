#!/usr/bin/env bash
# Runs Burrow's whole test suite: installs the build dependencies, checks
# style and warnings (Scripts/check.sh), builds, runs
# `swift test` on this host, a short bounded run of every fuzz target
# (Scripts/fuzz.sh; BURROW_FUZZ_SECONDS, default 30 per target), then the
# cgroup v2 suites in a VM (this kind of
# host has hybrid cgroups without v2 controllers; Scripts/vm-test.sh boots
# Debian's kernel under QEMU with a pure cgroup v2 tree), then burrowd as a
# systemd service in a VM booted with systemd (Scripts/vm-systemd-check.sh).
#
# Privileged tests run for real when this is root; without root they are
# skipped with their reason, unless BURROW_TEST_STRICT=1 (CI), which turns
# every unmet requirement into a failure.
#
# Usage: Scripts/test.sh [--no-vm]   (--no-vm: host suites only, for quick iteration)
set -euo pipefail
cd "$(dirname "$0")/.."

vm=1
case "${1:-}" in
--no-vm) vm=0 ;;
"") ;;
*) echo "usage: Scripts/test.sh [--no-vm]" >&2; exit 2 ;;
esac

Scripts/install-deps.sh
Scripts/install-tools.sh   # the real MCP servers the runtime tests run sandboxed
echo "== environment: $(uname -r), euid $(id -u), strict=${BURROW_TEST_STRICT:-0}"
echo "== style and warnings (Scripts/check.sh)"
Scripts/check.sh
# The same build as check.sh's, so nothing is built twice.
export BURROW_WARNINGS_AS_ERRORS=1
swift build --build-tests
# The tests' own run cache, not the host's /run/burrow/cache.
BURROW_RUN_CACHE=$(mktemp -d /tmp/burrow-test-run-cache.XXXXXX)/cache
export BURROW_RUN_CACHE
trap 'rm -rf "$(dirname "$BURROW_RUN_CACHE")"' EXIT
# CgroupV2Tests move processes between cgroups of their own making: VM only.
swift test --skip-build --skip 'CgroupV2Tests|DiskQuotaTests'
echo "== every benchmark in smoke mode (Scripts/bench-*.sh, BURROW_BENCH_SMOKE=1)"
if [ "$(id -u)" = 0 ]; then
    for bench in spawn api audit net mcp servers session trust fleet; do
        BURROW_BENCH_SMOKE=1 "Scripts/bench-$bench.sh"
    done
elif [ "${BURROW_TEST_STRICT:-0}" = 1 ]; then
    echo "the benchmarks need root (sandboxes, cgroups, bwrap as root): strict mode fails" >&2
    exit 1
else
    echo "skipped: the benchmarks need root (sandboxes, cgroups, bwrap as root)"
fi
echo "== fuzzing every parser of hostile input, 30 s per target (Scripts/fuzz.sh)"
Scripts/fuzz.sh --seconds "${BURROW_FUZZ_SECONDS:-30}"
if [ "$vm" = 1 ]; then
    echo "== cgroup v2 suites in a VM (Scripts/vm-test.sh)"
    Scripts/vm-test.sh -- \
        "$(swift build --show-bin-path)/BurrowPackageTests.xctest" --testing-library swift-testing \
        --filter 'ResourceLimitTests|CgroupV2Tests|DiskQuotaTests'
    echo "== burrowd under systemd in a VM (Scripts/vm-systemd-check.sh)"
    Scripts/vm-test.sh --systemd -- Scripts/vm-systemd-check.sh "$(swift build --show-bin-path)"
fi
