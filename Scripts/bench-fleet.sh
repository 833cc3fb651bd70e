#!/usr/bin/env bash
# The central audit copy (issue 27): how fast burrowd's shipper empties a
# backlog of local events into PostgreSQL, and how far behind the copy runs
# under a steady load. Starts a PostgreSQL server of its own (Debian's
# package: initdb into a temporary directory, a private loopback port, run
# as the postgres user), stopped and removed after.
#
# Target: >= 5,000 events/s for the backlog (each event durable locally
# first; shipped in batches of 1,000, one statement each).
#
# Then the shared registry ([registry] url): the invocation round trip of
# a burrowd whose registry is a replica of the fleet's, against one with
# the local SQLite registry alone, alternated on keep-alive connections so
# both see the same host. Target: the median of the paired differences at
# most 0.5 ms (invocations read the local replica, never PostgreSQL).
# bwrap running /bin/true is timed in the same run for scale.
#
# Usage: Scripts/bench-fleet.sh [events]   (default 50000; needs root: the server runs as postgres)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=Scripts/bench-common.sh
. Scripts/bench-common.sh
events=${1:-$(bench_count 50000 2000)}
[ "$(id -u)" -eq 0 ] || { echo "bench-fleet.sh: run as root (the server runs as the postgres user)" >&2; exit 2; }
Scripts/install-deps.sh
pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$pgbin/postgres" ] || { echo "bench-fleet.sh: no PostgreSQL server (apt-get install postgresql)" >&2; exit 2; }
bench_build --static burrow-fleet-bench burrowd burrow-spawner
command -v bwrap >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null
work=$(mktemp -d /var/tmp/burrow-bench-fleet.XXXXXX)
chmod 755 "$work"
mkdir -m 700 "$work/data" "$work/run"
chown postgres:postgres "$work/data" "$work/run"
password=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
printf '%s' "$password" >"$work/run/pwfile"
chown postgres "$work/run/pwfile"
printf '%s\n' "$password" >"$work/password"
chmod 600 "$work/password"
port=$((20000 + RANDOM % 40000))
pg() { setpriv --reuid=postgres --regid=postgres --clear-groups -- "$@"; }
server=
daemons=()
cleanup() {
    for d in "${daemons[@]}"; do kill "$d" 2>/dev/null && wait "$d" 2>/dev/null; done
    [ -n "$server" ] && kill -INT "$server" 2>/dev/null && wait "$server" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
(cd "$work" && pg "$pgbin/initdb" -D "$work/data" -U burrow --auth=scram-sha-256 --pwfile="$work/run/pwfile" -E UTF8 >/dev/null)
# Durable as a production server is (fsync on): the figure includes PostgreSQL's commits.
# exec: $! is the server itself, which cleanup stops.
(cd "$work" && exec setpriv --reuid=postgres --regid=postgres --clear-groups -- "$pgbin/postgres" -D "$work/data" -p "$port" -k "$work/run" -c listen_addresses=127.0.0.1 >"$work/server.log" 2>&1) &
server=$!
export PGPASSWORD=$password
for _ in $(seq 100); do psql -h 127.0.0.1 -p "$port" -U burrow -d postgres -Atqc 'SELECT 1' >/dev/null 2>&1 && break; sleep 0.1; done
psql -h 127.0.0.1 -p "$port" -U burrow -d postgres -Atqc 'CREATE DATABASE burrow' >/dev/null
out=$("$bin/burrow-fleet-bench" --url "postgresql://burrow@127.0.0.1:$port/burrow?sslmode=disable" --password-file "$work/password" --events "$events" --seconds "$(bench_count 3 1)")
echo "$out" | grep -v '^json:'
json=$(echo "$out" | sed -n 's/^json: //p')
# Every event arrived once: the copy's count is the backlog's plus the steady phase's.
rows=$(psql -h 127.0.0.1 -p "$port" -U burrow -d burrow -Atqc "SELECT count(*) || ' ' || count(DISTINCT sequence) || ' ' || max(sequence) FROM burrow_audit_events")
read -r count distinct last <<<"$rows"
[ "$count" = "$distinct" ] && [ "$count" = "$last" ] || { echo "bench-fleet.sh: the copy holds $count rows, $distinct distinct, the last $last: not exactly once" >&2; exit 1; }
echo "the copy: $count rows, each once, none missing"
shipping_ok=0
python3 - "$json" <<'PY' || shipping_ok=1
import json, os, sys
r = json.loads(sys.argv[1])
target = 5000
ok = r["eventsPerSecond"] >= target
print(f"target >= {target} events/s for the backlog: {r['eventsPerSecond']:.0f} ({'meets' if ok else 'MISSES'}); steady lag median {r['lagMedianMs']:.1f} ms, p99 {r['lagP99Ms']:.1f} ms")
sys.exit(0 if ok or os.environ["BURROW_BENCH_SMOKE"] == "1" else 1)
PY

# The shared registry's round trip: node "local" (SQLite alone) and node "fleet" (a replica of the registry in PostgreSQL).
psql -h 127.0.0.1 -p "$port" -U burrow -d postgres -Atqc 'CREATE DATABASE registry' >/dev/null
for node in local fleet; do
    mkdir -m 755 "$work/$node"
    cat >"$work/$node/burrow.toml" <<EOF
[rate_limits]
requests_per_minute = 10000000
max_concurrent = 64
registration_attempts_per_hour = 100
[daemon]
socket = "$work/$node/burrowd.sock"
registry = "$work/$node/registry.db"
invokers = ["group:burrow"]
[audit]
database = "$work/$node/audit.db"
EOF
    if [ "$node" = fleet ]; then
        printf '[registry]\nurl = "postgresql://burrow@127.0.0.1:%s/registry?sslmode=disable"\npassword_file = "%s"\n' "$port" "$work/password" >>"$work/$node/burrow.toml"
    fi
    BURROW_PROFILE_PATH=$PWD/Profiles "$bin/burrowd" --policy "$work/$node/burrow.toml" 2>"$work/$node/burrowd.log" &
    daemons+=($!)
    for _ in $(seq 200); do [ -S "$work/$node/burrowd.sock" ] && break; sleep 0.05; done
    [ -S "$work/$node/burrowd.sock" ] || { cat "$work/$node/burrowd.log"; exit 1; }
done
python3 - "$(bench_count 300 5)" "$work/local/burrowd.sock" "$work/fleet/burrowd.sock" <<'PY' || exit 1
import http.client, json, os, socket, statistics, subprocess, sys, time
runs, local, fleet = int(sys.argv[1]), sys.argv[2], sys.argv[3]

class Unix(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("burrowd")
        self.path = path
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)

def call(c, method, url, body):
    c.request(method, url, body=json.dumps(body), headers={"Content-Type": "application/json"})
    r = c.getresponse()
    return r.status, r.read()

profile = 'extends = "minimal"\n[tool]\nid = "bench-true"\nname = "true"\nversion = "1"\n'
a, b = Unix(local), Unix(fleet)
for c in (a, b):
    status, body = call(c, "POST", "/v1/tools", {"id": "bench-true", "metadata": {"name": "true", "version": "1"}, "profile": profile, "command": ["/bin/true"]})
    assert status == 201, (status, body)

def invoke(c):
    t = time.perf_counter()
    status, body = call(c, "POST", "/v1/tools/bench-true/invocations", {})
    ms = (time.perf_counter() - t) * 1000
    assert status == 200 and json.loads(body).get("exitCode") == 0, (status, body[:300])
    return ms

for _ in range(10):
    invoke(a); invoke(b)
pairs = []
for i in range(runs):
    # Alternated, each first half the time: both see the same moment of the host.
    if i % 2:
        x = invoke(a); y = invoke(b)
    else:
        y = invoke(b); x = invoke(a)
    pairs.append((x, y))
bwrap = json.loads(os.environ["BENCH_BWRAP_TRUE"])
def bwrap_once():
    t = time.perf_counter()
    subprocess.run(bwrap, check=True)
    return (time.perf_counter() - t) * 1000
bw = statistics.median(bwrap_once() for _ in range(runs))
x50, y50 = statistics.median(x for x, _ in pairs), statistics.median(y for _, y in pairs)
added = statistics.median(y - x for x, y in pairs)
print(f"invocation round trip p50: SQLite registry {x50:.2f} ms, fleet registry (PostgreSQL replica) {y50:.2f} ms; bwrap /bin/true {bw:.2f} ms")
ok = added <= 0.5
print(f"target: the fleet registry adds <= 0.5 ms at p50 (median of {runs} paired differences): {added:+.3f} ms ({'meets' if ok else 'MISSES'})")
sys.exit(0 if ok or os.environ["BURROW_BENCH_SMOKE"] == "1" else 1)
PY
exit "$shipping_ok"
