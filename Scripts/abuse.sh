#!/usr/bin/env bash
# burrowd's abuse suite (Tests/Abuse/abuse.py): starts a burrowd of its own on
# a private socket, its audit log on an 32 MiB tmpfs, and attacks it as hostile
# callers would (deep nesting, huge grant lists, NUL bytes, unknown and
# duplicate fields, HTTP garbage, slowloris, slow bodies, a connection flood
# and an audit flood from a role-less user, MCP framing violations from either
# side, the audit disk filling mid-run, garbage, stalls and a handshake flood
# on its HTTPS listener, whose certificates openssl makes), checking each answer while root's
# health is probed; prints burrowd's descriptors and memory before, at the
# peak and after each case, and health latency during it.
#
# Usage: Scripts/abuse.sh [--bin DIR] [--report FILE] [CASE...]   (as root; after swift build)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=""
report=""
cases=()
while [ $# -gt 0 ]; do
    case "$1" in
    --bin) bin="$2"; shift 2 ;;
    --report) report="$2"; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) cases+=("$1"); shift ;;
    esac
done
[ "$(id -u)" -eq 0 ] || { echo "abuse.sh: run as root (it mounts a tmpfs and plays other users)" >&2; exit 2; }
bin=${bin:-$(swift build --show-bin-path)}
dir=$(mktemp -d /tmp/burrow-abuse.XXXXXX)
chmod 755 "$dir"
mkdir "$dir/audit"
mount -t tmpfs -o size=32m,mode=0755 burrow-abuse "$dir/audit"
pid=""
cleanup() {
    [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
    umount "$dir/audit" 2>/dev/null || true
    rm -rf "$dir"
}
trap cleanup EXIT
# The HTTPS listener's CA, server and client certificates (EC P-256), and a free port.
Scripts/tls-certs.sh "$dir/tls" client
port=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat > "$dir/burrow.toml" <<'POLICY'
[rate_limits]
requests_per_minute = 10000
max_concurrent = 8
registration_attempts_per_hour = 1000
[daemon]
socket_group = "nogroup"
header_timeout = "2s"
body_timeout = "3s"
idle_timeout = "5s"
max_connections = 128
max_connections_per_user = 32
admin_connection_reserve = 16
shutdown_grace = "1s"
warm_sandboxes = false
[audit]
denial_window = "10s"
POLICY
cat >> "$dir/burrow.toml" <<POLICY
[transport.http]
listen = ["127.0.0.1:$port"]
tls_cert = "$dir/tls/server.pem"
tls_key = "$dir/tls/server.key"
client_ca = "$dir/tls/ca.pem"
POLICY
BURROW_PROFILE_PATH="$PWD/Profiles" "$bin/burrowd" --policy "$dir/burrow.toml" --socket "$dir/burrowd.sock" \
    --audit-db "$dir/audit/audit.db" --registry-db "$dir/registry.db" > "$dir/burrowd.log" 2>&1 &
pid=$!
for _ in $(seq 100); do [ -S "$dir/burrowd.sock" ] && break; sleep 0.1; done
[ -S "$dir/burrowd.sock" ] || { cat "$dir/burrowd.log" >&2; exit 1; }
sleep 0.5
status=0
/usr/bin/python3 Tests/Abuse/abuse.py --socket "$dir/burrowd.sock" --pid "$pid" --audit-dir "$dir/audit" --repo "$PWD" \
    --https-port "$port" --tls-dir "$dir/tls" \
    ${report:+--report "$report"} "${cases[@]}" || status=$?
if ! kill -0 "$pid" 2>/dev/null; then
    echo "abuse.sh: burrowd died during the abuse" >&2
    tail -40 "$dir/burrowd.log" >&2
    status=1
fi
exit $status
