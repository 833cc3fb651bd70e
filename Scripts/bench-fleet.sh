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
bench_build burrow-fleet-bench
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
cleanup() {
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
python3 - "$json" <<'PY'
import json, os, sys
r = json.loads(sys.argv[1])
target = 5000
ok = r["eventsPerSecond"] >= target
print(f"target >= {target} events/s for the backlog: {r['eventsPerSecond']:.0f} ({'meets' if ok else 'MISSES'}); steady lag median {r['lagMedianMs']:.1f} ms, p99 {r['lagP99Ms']:.1f} ms")
sys.exit(0 if ok or os.environ["BURROW_BENCH_SMOKE"] == "1" else 1)
PY
