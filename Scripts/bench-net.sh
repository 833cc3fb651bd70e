#!/usr/bin/env bash
# The egress proxy against direct connections, on this host's loopback
# (Tests/EgressBench): the same proxy engine `burrow run` and burrowd use, with
# two sandbox sessions on one proxy thread.
#
#   latency     connect + one byte each way + close, 2,000 times: the added p50
#               covers accept, request parsing, the policy decision, resolving
#               the name, the outbound connect and the relay set-up.
#   throughput  one connection receiving 2 GiB, direct vs through the proxy
#               (splice through a pipe per direction: no copy into the proxy),
#               and through a reference relay measured in the same run: a
#               thread per direction splicing with no request, policy or
#               accounting, the least any user-space relay does. On loopback
#               a relay adds a second TCP connection, whose send and receive
#               work competes with the client's and the server's for the
#               same CPUs: the reference shows that ceiling on this host.
#   fairness    sandbox B's latency while sandbox A streams without pause
#               through the same proxy thread.
#
# Targets (issue 8): <= 1 ms added per connection (p50); >= 80 % of direct
# throughput. Fairness has no number: it is reported.
#
# Usage: Scripts/bench-net.sh [samples] [megabytes]   (defaults 2000, 2048)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=Scripts/bench-common.sh
. Scripts/bench-common.sh
samples=${1:-$(bench_count 2000 50)}
megabytes=${2:-$(bench_count 2048 16)}

Scripts/install-deps.sh
bench_build burrow-egress-bench
echo "== $(nproc) CPUs; client, destination and proxy threads share them"
out=$("$bin/burrow-egress-bench" --samples "$samples" --megabytes "$megabytes")
echo "$out" | grep -v '^json:'
json=$(echo "$out" | sed -n 's/^json: //p')
python3 - "$json" <<'PY'
import json, os, sys
r = json.loads(sys.argv[1])
added_ok = r["addedP50Ms"] <= 1.0
share = r["proxyMBps"] / r["directMBps"]
share_ok = share >= 0.8
print(f"target <= 1 ms added per connection (p50): {r['addedP50Ms']:.3f} ms ({'meets' if added_ok else 'MISSES'})")
print(f"target >= 80 % of direct throughput: {100 * share:.0f} % ({'meets' if share_ok else 'MISSES'})")
print(f"  the reference relay reaches {100 * r['referenceMBps'] / r['directMBps']:.0f} % of direct on this host; the proxy moves {100 * r['proxyMBps'] / r['referenceMBps']:.0f} % of what it does")
sys.exit(0 if added_ok and share_ok or os.environ["BURROW_BENCH_SMOKE"] == "1" else 1)
PY
