#!/usr/bin/env bash
# A real example from scratch: installs mcp-server-git from PyPI into
# /opt/burrow/venvs, creates a git repository at /srv/burrow/repo, builds
# Burrow, lints the shipped profiles and shows the launch plan for the
# server under the mcp-server-git profile.
set -euo pipefail
cd "$(dirname "$0")/.."

Scripts/install-deps.sh
swift build -c release --product burrow
burrow=.build/release/burrow

venv=/opt/burrow/venvs/mcp-server-git
if [ ! -x "$venv/bin/mcp-server-git" ]; then
    echo "== installing mcp-server-git into $venv"
    mkdir -p /opt/burrow/venvs
    /usr/bin/python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check mcp-server-git
fi
repo=/srv/burrow/repo
if [ ! -d "$repo/.git" ]; then
    mkdir -p "$repo"
    git -C "$repo" init -q
    echo "hello from burrow" > "$repo/README"
fi

echo "== burrow profile lint Profiles/*.toml"
"$burrow" profile lint Profiles/*.toml
echo
echo "== burrow dry-run --profile Profiles/mcp-server-git.toml -- $venv/bin/python3 -m mcp_server_git --repository $repo"
"$burrow" dry-run --profile Profiles/mcp-server-git.toml -- "$venv/bin/python3" -m mcp_server_git --repository "$repo"
