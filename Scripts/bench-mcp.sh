#!/usr/bin/env bash
# The MCP relay's added latency per tools/call (issue 7): the same sandboxed
# server (Tests/MCP/echo_server.py under a profile extending mcp-base) driven
# by the same raw JSON-RPC client (Tests/MCP/bench_client.py), once with its
# stdio straight to the client (`burrow run`) and once behind the relay
# (`burrow mcp`: framing checks, id matching, schema validation, rate and
# concurrency limits, one audit invocation per call). The difference of the
# medians is the relay's cost. Rounds alternate so drift hits both alike.
#
# Targets (issue 22): <= 0.1 ms added per call at p50, <= 0.3 ms at p99
# (medians over the rounds of each side's p50 and p99). Also checked: every call is in the
# audit log (ToolInvoked and ToolCompleted each), since the relay hands the
# appends to a queue of their own.
#
# Usage: Scripts/bench-mcp.sh [samples per round] [rounds]   (defaults 3000, 3)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=Scripts/bench-common.sh
. Scripts/bench-common.sh
samples=${1:-$(bench_count 3000 20)}
rounds=${2:-$(bench_count 3 1)}

Scripts/install-deps.sh
bench_build --static burrow
burrow=$bin/burrow
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export BURROW_PROFILE_PATH=$PWD/Profiles
bench_echo_profile "$work/bench.toml"
server=(/usr/bin/python3 "$PWD/Tests/MCP/echo_server.py")
echo "== $(nproc) CPUs; $rounds rounds of $samples sequential calls each way (after 500 warm-up calls)"
results=()
for round in $(seq "$rounds"); do
    direct=$(python3 Tests/MCP/bench_client.py "$samples" -- "$burrow" run --without-mcp-relay --quiet --audit-db "$work/audit.db" --profile "$work/bench.toml" -- "${server[@]}")
    relayed=$(python3 Tests/MCP/bench_client.py "$samples" -- "$burrow" mcp --audit-db "$work/audit.db" --profile "$work/bench.toml" -- "${server[@]}")
    echo "round $round: direct $direct"
    echo "round $round: relay  $relayed"
    results+=("$direct" "$relayed")
done
completed=$("$burrow" audit --audit-db "$work/audit.db" --type ToolCompleted --jsonl --limit 1000000 | grep -c '"mcp":"tools/call"' || true)
invoked=$("$burrow" audit --audit-db "$work/audit.db" --type ToolInvoked --jsonl --limit 1000000 | grep -c '"mcp":"tools/call"' || true)
python3 - "$rounds" "$samples" "$completed" "$invoked" "${results[@]}" <<'PY'
import json, os, statistics, sys
rounds, samples, completed, invoked = map(int, sys.argv[1:5])
rows = [json.loads(r) for r in sys.argv[5:]]
direct, relay = rows[0::2], rows[1::2]
med = lambda rs, k: statistics.median(r[k] for r in rs)
added = med(relay, "p50") - med(direct, "p50")
print(f"direct stdio: p50 {med(direct, 'p50'):.0f} us, p99 {med(direct, 'p99'):.0f} us")
print(f"relay:        p50 {med(relay, 'p50'):.0f} us, p99 {med(relay, 'p99'):.0f} us")
calls = rounds * (samples + 500)
audited = completed == calls and invoked == calls
print(f"audit: {invoked} ToolInvoked and {completed} ToolCompleted for {calls} calls ({'complete' if audited else 'INCOMPLETE'})")
added99 = med(relay, "p99") - med(direct, "p99")
ok50, ok99 = added <= 100, added99 <= 300
print(f"target <= 0.1 ms added per call (p50): {added / 1000:.3f} ms ({'meets' if ok50 else 'MISSES'})")
print(f"target <= 0.3 ms added per call (p99): {added99 / 1000:.3f} ms ({'meets' if ok99 else 'MISSES'})")
sys.exit(0 if audited and ((ok50 and ok99) or os.environ["BURROW_BENCH_SMOKE"] == "1") else 1)
PY
