#!/usr/bin/env bash
# Sustained append rate of the audit store, every event durable when its
# append returns (WAL, synchronous=FULL, one fsync per commit): one process
# with 1, 2, 8 and 32 writer threads (group commit: the daemon's case), then
# several processes with one writer each (concurrent `burrow run`s taking
# turns on SQLite's write lock). Events are ToolInvoked/ToolCompleted as
# `burrow run` writes them, redacted and hash-chained. Ends with `verify`.
#
# Target: >= 5,000 events/s sustained (checked on the 8-thread and the
# multi-process phases).
#
# Usage: Scripts/bench-audit.sh [seconds-per-phase] [processes]   (defaults 3, 4)
# The database goes to a fresh directory under /var/tmp (the same disk as /var/lib).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=Scripts/bench-common.sh
. Scripts/bench-common.sh
seconds=${1:-$(bench_count 3 1)}
processes=${2:-4}

Scripts/install-deps.sh
bench_build burrow-audit-bench
dir=$(mktemp -d /var/tmp/burrow-audit-bench.XXXXXX)
trap 'rm -rf "$dir"' EXIT
echo "== file system: $(df -T "$dir" | awk 'NR==2 {print $2" on "$1}')"
out=$("$bin/burrow-audit-bench" --db "$dir/audit.db" --seconds "$seconds" --processes "$processes")
echo "$out" | grep -v '^json:'
json=$(echo "$out" | sed -n 's/^json: //p')
python3 - "$json" <<'PY'
import json, os, sys
r = json.loads(sys.argv[1])
target = 5000
ok = True
for key, name in [("threads-8", "8 writer threads"), ("processes", "multi-process")]:
    rate = r[key]
    verdict = "meets" if rate >= target else "MISSES"
    ok &= rate >= target
    print(f"target >= {target} events/s, {name}: {rate:,.0f} events/s ({verdict})")
sys.exit(0 if ok or os.environ["BURROW_BENCH_SMOKE"] == "1" else 1)
PY
