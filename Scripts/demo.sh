#!/usr/bin/env bash
# A real example from scratch: installs mcp-server-git (and mcp-server-time)
# from PyPI into /opt/burrow/venvs, creates a git repository at
# /srv/burrow/repo, builds Burrow, lints the shipped profiles, shows the launch
# plan for the git server, then runs it sandboxed and talks MCP to it, and
# shows what the audit log recorded of that run; then starts burrowd on a
# private socket, registers a tool, invokes it and reads its trail and metrics.
set -euo pipefail
cd "$(dirname "$0")/.."

Scripts/install-deps.sh
swift build -c release --static-swift-stdlib --product burrow
swift build -c release --static-swift-stdlib --product burrowd
swift build -c release --static-swift-stdlib --product burrow-spawner
burrow=.build/release/burrow

Scripts/install-tools.sh
venv=/opt/burrow/venvs/mcp-server-git
repo=/srv/burrow/repo

echo "== burrow profile lint Profiles/*.toml"
"$burrow" profile lint Profiles/*.toml
echo
echo "== burrow dry-run --profile Profiles/mcp-server-git.toml -- $venv/bin/python3 -m mcp_server_git --repository $repo"
"$burrow" dry-run --profile Profiles/mcp-server-git.toml -- "$venv/bin/python3" -m mcp_server_git --repository "$repo"

echo
echo "== burrow run --profile Profiles/mcp-server-git.toml --without-mcp-relay -- $venv/bin/python3 -m mcp_server_git --repository $repo"
echo "   (the sandbox alone, stdio straight through: without the flag burrow run refuses an MCP server's profile;"
echo "    MCP over stdio: initialize, then tools/call git_status; the run record goes to /tmp/burrow-demo-run.json)"
{
    printf '%s\n' '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"burrow-demo","version":"1"}}}'
    printf '%s\n' '{"jsonrpc":"2.0","method":"notifications/initialized"}'
    printf '%s\n' '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"git_status","arguments":{"repo_path":"/srv/burrow/repo"}}}'
    sleep 3
} | "$burrow" run --profile Profiles/mcp-server-git.toml --without-mcp-relay --json-result /tmp/burrow-demo-run.json -- \
    "$venv/bin/python3" -m mcp_server_git --repository "$repo"
echo
echo "== run record summary"
python3 -c '
import json; r = json.load(open("/tmp/burrow-demo-run.json"))
print("exit", r["exit"]["status"], "| uid", r["uid"], "| spawn", r["durations"]["spawnMicroseconds"], "us | cpu", r["usage"]["cpuMicroseconds"], "us | peak memory", r["usage"]["peakMemoryBytes"], "bytes")
print("controls enforced:", sum(c["enforced"] for c in r["controls"]), "of", len(r["controls"]))
print("refused system calls:", ", ".join(v["syscall"] + " x" + str(v["count"]) for v in r["violations"]) or "none")'
echo
echo "== burrow audit --invocation <this run>   (the audit log: ${BURROW_AUDIT_DB:-/var/lib/burrow/audit.db})"
"$burrow" audit --invocation "$(python3 -c 'import json; print(json.load(open("/tmp/burrow-demo-run.json"))["invocationID"])')"
echo
echo "== burrow audit verify"
"$burrow" audit verify

echo
echo "== burrow mcp --profile Profiles/mcp-server-git.toml -- $venv/bin/python3 -m mcp_server_git --repository $repo"
echo "   (the MCP relay: a call before any tools/list, so the relay lists the tools itself; then one with a"
echo "    schema-invalid argument, answered by Burrow without reaching the server; each call audited)"
since=$(date -u +%Y-%m-%dT%H:%M:%SZ)
{
    printf '%s\n' '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"burrow-demo","version":"1"}}}'
    printf '%s\n' '{"jsonrpc":"2.0","method":"notifications/initialized"}'
    printf '%s\n' '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"git_status","arguments":{"repo_path":"/srv/burrow/repo"}}}'
    printf '%s\n' '{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"git_log","arguments":{"repo_path":"/srv/burrow/repo","max_count":"ten"}}}'
    sleep 3
} | "$burrow" mcp --profile Profiles/mcp-server-git.toml -- "$venv/bin/python3" -m mcp_server_git --repository "$repo"
echo
echo "== burrow audit --tool mcp-server-git --since $since"
"$burrow" audit --tool mcp-server-git --since "$since"

echo
echo "== burrowd: a daemon on a private socket; register a tool, invoke it, read its trail and metrics"
dir=$(mktemp -d /tmp/burrow-demo.XXXXXX)
daemon=''
trap '[ -z "$daemon" ] || kill "$daemon" 2>/dev/null; rm -rf "$dir"' EXIT
printf '[daemon]\nsocket = "%s"\nregistry = "%s"\n' "$dir/burrowd.sock" "$dir/registry.db" >"$dir/burrow.toml"
BURROW_PROFILE_PATH=$PWD/Profiles .build/release/burrowd --policy "$dir/burrow.toml" 2>"$dir/burrowd.log" &
daemon=$!
for _ in $(seq 100); do [ -S "$dir/burrowd.sock" ] && break; sleep 0.05; done
export BURROW_SOCKET=$dir/burrowd.sock
echo "\$ burrow tools register --profile Profiles/minimal.toml --version 1.0.0 --category demo -- sh -c"
BURROW_PROFILE_PATH=$PWD/Profiles "$burrow" tools register --profile Profiles/minimal.toml --version 1.0.0 --category demo -- sh -c
echo "\$ burrow tools list"
"$burrow" tools list
echo "\$ burrow invoke minimal -- 'echo hello from uid \$(id -u) in \$(pwd); exit 3'"
status=0
"$burrow" invoke minimal -- 'echo hello from uid $(id -u) in $(pwd); exit 3' || status=$?
echo "(exit status $status)"
echo "\$ curl --unix-socket \$BURROW_SOCKET http://burrowd/v1/security/audit/minimal   (event types)"
curl -s --unix-socket "$BURROW_SOCKET" http://burrowd/v1/security/audit/minimal |
    python3 -c 'import json,sys; print(" ".join(e["type"] for e in json.load(sys.stdin)))'
echo "\$ curl --unix-socket \$BURROW_SOCKET http://burrowd/metrics | grep invocations_total"
curl -s --unix-socket "$BURROW_SOCKET" http://burrowd/metrics | grep '^burrow_invocations_total'

