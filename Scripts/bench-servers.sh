#!/usr/bin/env bash
# Time to ready and peak memory of the third-party MCP servers, run directly
# and under `burrow mcp` with their shipped profiles, in the same run
# (alternating, so drift hits both alike). "Ready" is the initialize answer,
# timed by the official MCP client from the moment it starts the command
# (Tests/MCPServers/mcp_client.py); peak memory is the largest peak resident
# size among the client's descendants (burrow's own supervisor left out).
#
# Usage: Scripts/bench-servers.sh [starts per server and way]   (default 5; needs root
#        and Scripts/install-tools.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=Scripts/bench-common.sh
. Scripts/bench-common.sh
starts=${1:-$(bench_count 5 1)}
bench_build --static burrow
burrow=$bin/burrow
client=/opt/burrow/venvs/mcp-server-fetch/bin/python3
work=$(mktemp -d /var/tmp/burrow-bench-servers.XXXXXX)
trap 'rm -rf "$work"' EXIT
export BURROW_AUDIT_DB=$work/audit.db
printf '[parameters]\nallowed_roots = ["%s"]\n' "$work" >"$work/burrow.toml"
echo '{"calls": []}' >"$work/spec.json"
mkdir -p "$work/d"
V=/opt/burrow/venvs
# profile | parameters | environment | command (${d} is the data directory)
servers=(
    'mcp-server-time||-|V/mcp-server-time/bin/python3 -m mcp_server_time'
    'mcp-server-sqlite|data|-|V/mcp-server-sqlite/bin/mcp-server-sqlite --db-path ${d}/t.db'
    'mcp-server-duckdb|data|-|V/mcp-server-duckdb/bin/mcp-server-duckdb --db-path ${d}/t.duckdb'
    'mcp-server-calculator||-|V/mcp-server-calculator/bin/mcp-server-calculator'
    'mcp-shell-server||ALLOW_COMMANDS=echo|V/mcp-shell-server/bin/mcp-shell-server'
    'cli-mcp-server|dir|ALLOWED_DIR=${d}|V/cli-mcp-server/bin/cli-mcp-server'
    'excel-mcp-server|dir|-|V/excel-mcp-server/bin/excel-mcp-server stdio --allow-dir ${d}'
    'mcp-memex|store|MEMEX_DIR=${d}|V/mcp-memex/bin/python3 -m memex.server'
    'mcp-pandoc|docs|-|V/mcp-pandoc/bin/mcp-pandoc'
    'markitdown-mcp|docs|-|V/markitdown-mcp/bin/markitdown-mcp'
)
printf '%-22s %12s %12s %10s %12s %12s\n' server "ready direct" "ready burrow" ratio "peak direct" "peak burrow"
for entry in "${servers[@]}"; do
    IFS='|' read -r profile param env command <<<"$entry"
    command=${command//V\//$V/}
    direct=${command//\$\{d\}/$work/d}
    inside=${command//\$\{d\}/\$\{$param\}}
    vars=()
    [ "$env" = - ] || vars=("${env//\$\{d\}/$work/d}")
    args=()
    [ -z "$param" ] || args=(--param "$param=$work/d")
    rows=()
    for _ in $(seq "$starts"); do
        # shellcheck disable=SC2086 # the command is words
        d=$(env "${vars[@]}" "$client" Tests/MCPServers/mcp_client.py "$work/spec.json" -- $direct 2>/dev/null | tail -1) || true  # the client's verdict is its last line
        # shellcheck disable=SC2086
        b=$(env "${vars[@]}" "$client" Tests/MCPServers/mcp_client.py "$work/spec.json" -- \
            "$burrow" mcp --policy "$work/burrow.toml" --profile "Profiles/$profile.toml" "${args[@]}" -- $inside 2>/dev/null | tail -1) || true
        rows+=("$d" "$b")
    done
    python3 - "$profile" "${rows[@]}" <<'PY'
import json, statistics, sys
name, rows = sys.argv[1], [json.loads(r) for r in sys.argv[2:]]
d, b = rows[0::2], rows[1::2]
if not all(r.get("ok") for r in rows):
    print(f"{name:22s} FAILED: {[r for r in rows if not r.get('ok')][:1]}")
    sys.exit(1)
md = statistics.median(r["initializeSeconds"] for r in d)
mb = statistics.median(r["initializeSeconds"] for r in b)
pd = statistics.median(r["peakKiB"] for r in d) / 1024
pb = statistics.median(r["peakKiB"] for r in b) / 1024
print(f"{name:22s} {md*1000:9.0f} ms {mb*1000:9.0f} ms {mb/md:9.2f}x {pd:9.0f} MiB {pb:9.0f} MiB")
PY
done
