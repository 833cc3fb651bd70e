#!/usr/bin/env bash
# A real example from scratch: installs mcp-server-git (and mcp-server-time)
# from PyPI into /opt/burrow/venvs, creates a git repository at
# /srv/burrow/repo, builds Burrow, lints the shipped profiles, shows the launch
# plan for the git server, then runs it sandboxed and talks MCP to it, and
# shows what the audit log recorded of that run.
set -euo pipefail
cd "$(dirname "$0")/.."

Scripts/install-deps.sh
swift build -c release --static-swift-stdlib --product burrow
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
echo "== burrow run --profile Profiles/mcp-server-git.toml -- $venv/bin/python3 -m mcp_server_git --repository $repo"
echo "   (MCP over stdio: initialize, then tools/call git_status; the run record goes to /tmp/burrow-demo-run.json)"
{
    printf '%s\n' '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"burrow-demo","version":"1"}}}'
    printf '%s\n' '{"jsonrpc":"2.0","method":"notifications/initialized"}'
    printf '%s\n' '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"git_status","arguments":{"repo_path":"/srv/burrow/repo"}}}'
    sleep 3
} | "$burrow" run --profile Profiles/mcp-server-git.toml --json-result /tmp/burrow-demo-run.json -- \
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
