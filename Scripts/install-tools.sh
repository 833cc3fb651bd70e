#!/usr/bin/env bash
# Installs the real MCP servers the examples and tests run under Burrow, each
# in its own virtual environment below /opt/burrow/venvs (what the shipped
# profiles grant), and creates the example repository /srv/burrow/repo.
# Idempotent; needs PyPI.
set -euo pipefail

for server in mcp-server-time mcp-server-git mcp-server-fetch; do
    venv=/opt/burrow/venvs/$server
    if [ ! -x "$venv/bin/$server" ]; then
        echo "== installing $server into $venv"
        mkdir -p /opt/burrow/venvs
        /usr/bin/python3 -m venv "$venv"
        "$venv/bin/pip" install --quiet --disable-pip-version-check "$server"
    fi
done

repo=/srv/burrow/repo
if [ ! -d "$repo/.git" ]; then
    mkdir -p "$repo"
    git -C "$repo" init -q
    echo "hello from burrow" > "$repo/README"
fi
