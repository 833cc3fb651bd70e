#!/usr/bin/env bash
# Coverage-guided fuzzing (libFuzzer, from the Swift toolchain) of every
# parser of hostile input: the profile reader (TOML and JSON), burrowd's
# request decoders, the MCP relay's message framing, the JSON Schema subset,
# the egress proxy's request parser and the session socket's frames. The targets are Tests/Fuzz; their
# seed corpus is Tests/Fuzz/Corpus/<target>. A crash stops the run, leaves
# the input in the output directory and fails; add it to the target's seed
# corpus as a regression test (the normal test run replays every seed).
#
# Usage: Scripts/fuzz.sh [--seconds N] [--out DIR] [TARGET...]
#   --seconds N   per target (default 600; Scripts/test.sh runs 30)
#   --out DIR     where corpora, crashes and logs go (default: a new temp dir)
#   TARGET        profile-toml profile-json api-request mcp-message json-schema egress-request session-frames tool-manifest (default: all)
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=600
out=""
targets=()
while [ $# -gt 0 ]; do
    case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "fuzz.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
    esac
done
all=(profile-toml profile-json api-request mcp-message json-schema egress-request session-frames tool-manifest)
[ ${#targets[@]} -gt 0 ] || targets=("${all[@]}")
for t in "${targets[@]}"; do
    [ -d "Tests/Fuzz/Corpus/$t" ] || { echo "fuzz.sh: no target $t (targets: ${all[*]})" >&2; exit 2; }
done
# The fuzz build is its own (.build-fuzz); warnings are check.sh's business.
unset BURROW_WARNINGS_AS_ERRORS
out=${out:-$(mktemp -d /tmp/burrow-fuzz.XXXXXX)}
mkdir -p "$out"

echo "== building the fuzz targets with -sanitize=fuzzer (.build-fuzz)"
flags=(--product burrow-fuzz --scratch-path .build-fuzz -Xswiftc -sanitize=fuzzer -Xswiftc -DBURROW_FUZZING)
swift build "${flags[@]}"
bin="$(swift build "${flags[@]}" --show-bin-path)/burrow-fuzz"

status=0
printf '%-16s %10s %10s %8s %7s\n' target executions "exec/s" corpus crashes > "$out/summary"
for t in "${targets[@]}"; do
    mkdir -p "$out/$t/corpus" "$out/$t/crashes"
    echo "== $t: ${seconds}s (log: $out/$t/log)"
    set +e
    # Swift's backtracer would take the crash signal before libFuzzer can save the input.
    SWIFT_BACKTRACE=enable=no BURROW_FUZZ_TARGET="$t" "$bin" "$out/$t/corpus" "Tests/Fuzz/Corpus/$t" \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
        -artifact_prefix="$out/$t/crashes/" -print_final_stats=1 > "$out/$t/log" 2>&1
    rc=$?
    set -e
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/$t/log" | tail -1)
    speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$out/$t/log" | tail -1)
    corpus=$(find "$out/$t/corpus" -type f | wc -l)
    crashes=$(find "$out/$t/crashes" -type f | wc -l)
    printf '%-16s %10s %10s %8s %7s\n' "$t" "${runs:-?}" "${speed:-?}" "$corpus" "$crashes" >> "$out/summary"
    if [ "$rc" -ne 0 ] || [ "$crashes" -gt 0 ]; then
        echo "fuzz.sh: $t failed (exit $rc); the input that did it:" >&2
        find "$out/$t/crashes" -type f >&2
        grep -E -A30 '^==[0-9]+==|Fatal error|invariant broken' "$out/$t/log" | head -60 >&2 || tail -40 "$out/$t/log" >&2
        status=1
    fi
done
cat "$out/summary"
exit $status
