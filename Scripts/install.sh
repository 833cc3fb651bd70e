#!/usr/bin/env bash
# Installs Burrow on this machine: burrow and burrowd, the systemd units
# (burrowd.service, the audit-prune timer), the sysusers and tmpfiles
# snippets (groups burrow and burrow-audit; /run/burrow, /var/lib/burrow),
# the shipped profiles into /etc/burrow/profiles, and a commented policy at
# /etc/burrow/burrow.toml when there is none. Idempotent; needs root.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
    cat <<'EOF'
Usage: Scripts/install.sh [--from DIR] [--root DIR] [--prefix DIR] [--start]

  --from DIR    take burrow and burrowd from DIR (e.g. .build/debug) instead of
                building them (release, Swift runtime linked in statically)
  --root DIR    install below DIR (a staging tree): nothing is activated
  --prefix DIR  where bin/ and share/ go (default /usr/local)
  --start       enable and (re)start burrowd.service and the prune timer

Afterwards: `systemctl enable --now burrowd` (or pass --start). Adding a user
to the burrow group (`usermod -aG burrow USER`, then a new login) is all that
user needs: their `burrow run`, `burrow mcp` and `burrow dry-run` go through
burrowd's session socket (the runner role), and `burrow invoke` runs
registered tools (the invoker role). Name operators in /etc/burrow/burrow.toml
[daemon] admins; `burrow tools list` talks to it.
EOF
}

from='' root='' prefix=/usr/local start=0
while [ $# -gt 0 ]; do
    case $1 in
        --from) from=$(realpath -e "$2"); shift 2 ;;
        --root) root=$(realpath -m "$2"); shift 2 ;;
        --prefix) prefix=$2; shift 2 ;;
        --start) start=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "install.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
[ "$(id -u)" -eq 0 ] || { echo "install.sh: run as root" >&2; exit 1; }

if [ -z "$from" ]; then
    Scripts/install-deps.sh
    echo "== building burrow and burrowd (release)"
    swift build -c release --static-swift-stdlib --product burrow 2>&1 | tail -1
    swift build -c release --static-swift-stdlib --product burrowd 2>&1 | tail -1
    swift build -c release --static-swift-stdlib --product burrow-spawner 2>&1 | tail -1
    from=$PWD/.build/release
    man_pages=$(mktemp -d)
    Scripts/man.sh "$man_pages"
fi
for b in burrow burrowd burrow-spawner; do [ -x "$from/$b" ] || { echo "install.sh: no $from/$b" >&2; exit 1; }; done

echo "== installing into ${root:-/} (prefix $prefix)"
install -d -m 0755 "$root$prefix/bin" "$root/etc/systemd/system" "$root/etc/sysusers.d" "$root/etc/tmpfiles.d" \
    "$root/etc/burrow" "$root/etc/burrow/profiles" "$root$prefix/share/doc/burrow" "$root$prefix/share/doc/burrow/docs" \
    "$root$prefix/share/man/man1" "$root$prefix/share/man/man5" "$root$prefix/share/man/man8"
# burrow-spawner beside burrowd: the small helper burrowd clones sandboxes through.
install -m 0755 "$from/burrow" "$from/burrowd" "$from/burrow-spawner" "$root$prefix/bin/"
for unit in burrowd.service burrow-audit-prune.service burrow-audit-prune.timer; do
    sed "s|/usr/local/|$prefix/|g" "Systemd/$unit" >"$root/etc/systemd/system/$unit"
    chmod 0644 "$root/etc/systemd/system/$unit"
done
install -m 0644 Systemd/burrow.sysusers "$root/etc/sysusers.d/burrow.conf"
install -m 0644 Systemd/burrow.tmpfiles "$root/etc/tmpfiles.d/burrow.conf"
install -m 0644 Profiles/*.toml "$root/etc/burrow/profiles/"
install -m 0644 README.md THREAT_MODEL.md SECURITY.md "$root$prefix/share/doc/burrow/"
install -m 0644 docs/*.md "$root$prefix/share/doc/burrow/docs/"
# Man pages: the command pages are generated from --help when Burrow is built here;
# with --from only the hand-written ones (burrowd(8), burrow.toml(5), burrow-profile(5)).
install -m 0644 docs/man/*.5 "$root$prefix/share/man/man5/"
install -m 0644 docs/man/*.8 "$root$prefix/share/man/man8/"
if [ -n "${man_pages:-}" ]; then install -m 0644 "$man_pages"/*.1 "$root$prefix/share/man/man1/"; fi
policy=$root/etc/burrow/burrow.toml
if [ ! -e "$policy" ]; then
    cat >"$policy" <<'EOF'
# Burrow's host policy: ceilings for every profile, and burrowd's settings.
# Every key is optional; burrow.toml(5), docs/host-policy.md and
# docs/daemon-api.md (in /usr/local/share/doc/burrow) list them all.

[daemon]
# socket = "/run/burrow/burrowd.sock"   # 0660 root:socket_group
# socket_group = "burrow"
# admins = ["user:alice"]                # register, update, remove tools
# invokers = ["group:burrow"]            # invoke registered tools
# runners = ["group:burrow"]             # burrow run/mcp/dry-run as a normal user (session socket)
# auditors = ["group:burrow-audit"]      # read the audit log
# shutdown_grace = "30s"

# [users]                                # ceilings for normal users' own profiles (below [policies])
# network_policy = "restricted"          # none | restricted | full
# max_memory_mb = 512
# allow_write = true                     # false: write grants become read-only
# max_concurrent = 8                     # sessions at once, per user
# runs_per_minute = 120                  # per user

# [rate_limits]
# requests_per_minute = 60               # per tool
# max_concurrent = 5                     # live sandboxes per tool
# registration_attempts_per_hour = 10    # per caller
EOF
    chmod 0644 "$policy"
    echo "   wrote $policy"
fi

if [ -n "$root" ]; then
    echo "== staged below $root; nothing activated"
    exit 0
fi
systemd-sysusers /etc/sysusers.d/burrow.conf
systemd-tmpfiles --create /etc/tmpfiles.d/burrow.conf
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload
    systemd-analyze verify /etc/systemd/system/burrowd.service /etc/systemd/system/burrow-audit-prune.service /etc/systemd/system/burrow-audit-prune.timer
    if [ "$start" -eq 1 ]; then
        systemctl enable --quiet burrowd.service burrow-audit-prune.timer
        systemctl restart burrowd.service
        systemctl start burrow-audit-prune.timer
        systemctl --no-pager --lines=0 status burrowd.service
    fi
else
    echo "   systemd is not running here: units installed, not loaded"
fi
echo "== done: $prefix/bin/burrow, $prefix/bin/burrowd, burrowd.service"
