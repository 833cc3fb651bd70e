#!/usr/bin/env bash
# Installs the Debian packages Burrow builds and runs with (idempotent).
# Swift itself comes from the machine image (/opt/swift); nothing is downloaded at build time.
set -euo pipefail

# postgresql: the fleet's tests start servers of their own (initdb into a temporary directory); burrowd itself only connects to one.
packages=(pkg-config libseccomp-dev libcap-dev libsqlite3-dev libssl-dev openssl curl git python3 python3-venv tzdata util-linux clang-format postgresql postgresql-client)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}"
    as_root=()
    [ "$(id -u)" -eq 0 ] || as_root=(sudo)
    "${as_root[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
fi
