#!/usr/bin/env bash
# Installs the real MCP servers the examples and tests run under Burrow, each
# in its own virtual environment below /opt/burrow/venvs (what the shipped
# profiles grant), and creates the example repository /srv/burrow/repo.
# Idempotent; needs PyPI.
set -euo pipefail

# venv name, entry point that proves it is installed, then what pip installs.
# Third-party servers are pinned to the versions tested under their shipped
# profiles. Several declare mcp>=1 without an upper bound and fail on mcp 2.x
# (the low-level Server API and mcp.server.fastmcp changed): they get 'mcp<2'.
servers=(
    "mcp-server-time|bin/mcp-server-time|mcp-server-time"
    "mcp-server-git|bin/mcp-server-git|mcp-server-git"
    "mcp-server-fetch|bin/mcp-server-fetch|mcp-server-fetch"
    "mcp-server-sqlite|bin/mcp-server-sqlite|mcp-server-sqlite==2025.4.25 mcp<2"
    "mcp-server-duckdb|bin/mcp-server-duckdb|mcp-server-duckdb==1.1.0 mcp<2"
    "mcp-server-calculator|bin/mcp-server-calculator|mcp-server-calculator==0.2.1"
    "mcp-shell-server|bin/mcp-shell-server|mcp-shell-server==1.1.14"
    "cli-mcp-server|bin/cli-mcp-server|cli-mcp-server==0.2.5 mcp<2"
    "excel-mcp-server|bin/excel-mcp-server|excel-mcp-server==2.2.2"
    "mcp-memex|bin/mcp-memex|mcp-memex==0.1.9 mcp<2"
    "mcp-pandoc|lib/python3.11/site-packages/pypandoc/files/pandoc|mcp-pandoc==0.11.1 pypandoc-binary"
    "markitdown-mcp|bin/markitdown-mcp|markitdown-mcp==0.0.1a8"
    "mcp-text-editor|bin/mcp-text-editor|mcp-text-editor==1.0.2 mcp<2"
    # Not a server: what the contract tests check docs/openapi.yaml with
    # (validator, the client generator whose client drives burrowd, and
    # schemathesis, which fuzzes a live burrowd against it).
    "openapi-tools|bin/schemathesis|openapi-spec-validator==0.9.0 openapi-python-client==0.29.1 schemathesis==4.32.5"
)
mkdir -p /opt/burrow/venvs
for entry in "${servers[@]}"; do
    IFS='|' read -r name proof packages <<<"$entry"
    venv=/opt/burrow/venvs/$name
    if [ ! -e "$venv/$proof" ]; then
        echo "== installing $name into $venv ($packages)"
        /usr/bin/python3 -m venv "$venv"
        # shellcheck disable=SC2086 # one word per requirement
        "$venv/bin/pip" install --quiet --disable-pip-version-check $packages
    fi
done

repo=/srv/burrow/repo
if [ ! -d "$repo/.git" ]; then
    mkdir -p "$repo"
    git -C "$repo" init -q
    echo "hello from burrow" > "$repo/README"
fi
