#!/usr/bin/env bash
# burrowd as a systemd service, end to end. Runs inside the VM booted with
# systemd as PID 1 (Scripts/test.sh does: Scripts/vm-test.sh --systemd -- THIS):
# installs Burrow with Scripts/install.sh (units verified by systemd-analyze),
# starts burrowd.service (Type=notify, Delegate=yes, hardened), registers a
# tool and invokes it through the socket with the CLI, reads its audit trail
# and metrics, checks the watchdog and the delegated cgroups, runs a command
# as a normal user added to the burrow group (the session socket), and stops it.
#
# Usage: Scripts/vm-systemd-check.sh [BUILD-DIR]   (default: .build/debug)
set -euo pipefail
cd "$(dirname "$0")/.."
from=${1:-.build/debug}
fail() { echo "vm-systemd-check: FAIL: $*" >&2; journalctl -u burrowd --no-pager -n 50 >&2 || true; exit 1; }
step() { echo "== $*"; }

[ "$(cat /proc/1/comm)" = systemd ] || fail "PID 1 is not systemd (run under Scripts/vm-test.sh --systemd)"
step "install (Scripts/install.sh --from $from --start)"
Scripts/install.sh --from "$from" --start
# Each CLI call within 120 s: a burrowd that stops answering fails here, with
# its journal, instead of holding the VM until its 20-minute timeout.
burrow_bin=$(command -v burrow)
burrow() {
    local rc=0
    timeout 120 "$burrow_bin" "$@" || rc=$?
    [ "$rc" -ne 124 ] || fail "burrow $* did not finish within 120 s"
    return "$rc"
}
getent group burrow >/dev/null && getent group burrow-audit >/dev/null || fail "sysusers did not create the groups"
[ "$(stat -c '%a %U:%G' /var/lib/burrow)" = "750 root:burrow-audit" ] || fail "tmpfiles: /var/lib/burrow is $(stat -c '%a %U:%G' /var/lib/burrow)"

step "burrowd.service is active (READY=1 came from burrowd)"
for _ in $(seq 100); do [ -S /run/burrow/burrowd.sock ] && break; sleep 0.1; done
[ "$(systemctl is-active burrowd)" = active ] || fail "burrowd is $(systemctl is-active burrowd)"
status=$(systemctl show burrowd -p StatusText --value)
case $status in "serving on /run/burrow/burrowd.sock and /run/burrow/burrowd-session.sock") ;; *) fail "StatusText '$status'" ;; esac
for s in /run/burrow/burrowd.sock /run/burrow/burrowd-session.sock; do
    [ "$(stat -c '%a %U:%G' $s)" = "660 root:burrow" ] || fail "$s is $(stat -c '%a %U:%G' $s)"
done
[ "$(systemctl show burrowd -p WatchdogUSec --value)" = 30s ] || fail "no watchdog"
step "watchdog: with WatchdogSec=2s burrowd must ping every second to stay up"
mkdir -p /etc/systemd/system/burrowd.service.d
printf '[Service]\nWatchdogSec=2s\n' >/etc/systemd/system/burrowd.service.d/watchdog.conf
systemctl daemon-reload
systemctl restart burrowd
first=$(systemctl show burrowd -p WatchdogTimestampMonotonic --value)
sleep 5
[ "$(systemctl is-active burrowd)" = active ] || fail "burrowd did not survive a 2 s watchdog"
[ "$(systemctl show burrowd -p NRestarts --value)" = 0 ] || fail "the watchdog restarted burrowd"
last=$(systemctl show burrowd -p WatchdogTimestampMonotonic --value)
[ "$last" -gt "$first" ] || fail "no WATCHDOG=1 seen (timestamp $first, then $last)"

step "register and invoke through the socket"
burrow tools register --profile /etc/burrow/profiles/minimal.toml --version 1.0.0 --category demo -- sh -c
out=$(burrow invoke minimal -- 'echo hello from $(id -u); cat /proc/self/cgroup')
echo "$out"
echo "$out" | grep -Eq '^hello from [0-9]+$' || fail "unexpected output"
cgroup=$(echo "$out" | sed -n 's/^0:://p')
case $cgroup in /) ;; *) fail "the sandbox sees cgroup '$cgroup' (expected its own root)" ;; esac
burrow invoke minimal -- 'exit 7' && fail "exit status lost" || [ $? -eq 7 ] || fail "exit status not 7"
# Under the unit's hardening the clone goes through burrow-spawner, into a network namespace it prepared.
burrow invoke minimal --json -- true | grep -q 'prepared ahead by burrow-spawner' || fail "sandboxes are not cloned by burrow-spawner"
pgrep -x burrow-spawner >/dev/null || fail "no burrow-spawner"

step "delegated cgroups: burrowd in supervisor/, invocations under tools/"
main=$(systemctl show burrowd -p MainPID --value)
grep -q '^0::/system.slice/burrowd.service/supervisor$' "/proc/$main/cgroup" || fail "burrowd's cgroup: $(cat "/proc/$main/cgroup")"
[ -d /sys/fs/cgroup/system.slice/burrowd.service/tools ] || fail "no tools/ cgroup"
# What is left is the next sandbox of minimal, built ahead: one cgroup whose
# tasks have not exec'd yet (still burrow-spawner's image, waiting for a request).
held() {
    for g in $(find /sys/fs/cgroup/system.slice/burrowd.service/tools -mindepth 1 -maxdepth 1 -type d); do
        for p in $(cat "$g/cgroup.procs"); do [ "$(cat /proc/$p/comm)" = burrow-spawner ] || fail "$g holds a running $(cat /proc/$p/comm)"; done
        echo "$g"
    done
}
for _ in $(seq 50); do [ -n "$(held)" ] && break; sleep 0.1; done
[ "$(held | wc -l)" -eq 1 ] || fail "expected the one sandbox built ahead under tools/, found: $(held)"

step "audit trail and metrics"
burrow audit --tool minimal
[ "$(burrow audit --tool minimal --type ToolInvoked --jsonl | wc -l)" -eq 3 ] || fail "expected 3 ToolInvoked"
burrow audit verify
metrics=$(curl -s --unix-socket /run/burrow/burrowd.sock http://burrowd/metrics)
echo "$metrics" | grep -q '^burrow_invocations_total{outcome="completed"} 2$' || fail "metrics: $metrics"
echo "$metrics" | grep -q '^burrow_spawn_seconds_count 3$' || fail "metrics: $metrics"

step "a normal user added to the burrow group runs through burrowd's session socket (nothing else to set up)"
useradd --create-home --groups burrow burrowvm
set +e
out=$(cd /home/burrowvm && setpriv --reuid burrowvm --regid burrowvm --init-groups burrow run --profile minimal -- sh -c 'echo user run; exit 4')
rc=$?
set -e
[ "$rc" -eq 4 ] && [ "$out" = "user run" ] || fail "the user's run: exit $rc, output '$out'"
burrow audit --type ToolInvoked --jsonl | tail -1 | grep -q '"principal":"burrowvm"' || fail "the user's ToolInvoked does not name it"
userdel --remove burrowvm

step "reload: systemctl reload burrowd (SIGHUP) keeps it serving, same process"
before=$(systemctl show burrowd -p MainPID --value)
systemctl reload burrowd
sleep 0.5
[ "$(systemctl is-active burrowd)" = active ] || fail "burrowd is $(systemctl is-active burrowd) after a reload"
[ "$(systemctl show burrowd -p MainPID --value)" = "$before" ] || fail "a reload restarted burrowd"
curl -sf --unix-socket /run/burrow/burrowd.sock http://burrowd/v1/health >/dev/null || fail "no health after a reload"
journalctl -u burrowd --no-pager | grep -q 'SIGHUP: no \[transport.http\] listener' || fail "the reload left no line in the journal"

step "stop: SIGTERM, clean exit, socket removed"
systemctl stop burrowd
[ "$(systemctl show burrowd -p Result --value)" = success ] || fail "stop result $(systemctl show burrowd -p Result --value)"
left=$(find /sys/fs/cgroup/system.slice/burrowd.service/tools -mindepth 1 -maxdepth 1 -type d 2>/dev/null || true)
[ -z "$left" ] || fail "invocation cgroups left after the stop (the sandbox built ahead must go with it): $left"
[ ! -e /run/burrow/burrowd.sock ] && [ ! -e /run/burrow/burrowd-session.sock ] || fail "a socket is left behind"
systemctl start burrowd
burrow tools list | grep -q '^minimal ' || fail "registrations lost across the restart"
systemctl stop burrowd
echo "vm-systemd-check: OK"
