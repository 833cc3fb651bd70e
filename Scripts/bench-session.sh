#!/usr/bin/env bash
# What a normal user's path costs (issue 23): `burrow run` and `burrow mcp`
# as root (in process) against the same commands as a throwaway user in the
# socket group (a client of burrowd's session socket: the request, its stdio
# passed as descriptors, burrowd's front door, the run record back), in the
# same run, alternating, with bwrap's median beside them for scale.
#
# Targets: <= 1 ms added to `burrow run --profile minimal -- /bin/true` at
# the median; <= 0.1 ms added per MCP tools/call (p50, medians over rounds).
#
# Usage: Scripts/bench-session.sh [runs] [mcp-samples] [mcp-rounds]   (defaults 200, 3000, 3; needs root)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=Scripts/bench-common.sh
. Scripts/bench-common.sh
runs=${1:-$(bench_count 200 6)}
samples=${2:-$(bench_count 3000 20)}
rounds=${3:-$(bench_count 3 1)}
[ "$(id -u)" -eq 0 ] || { echo "bench-session.sh: run as root (it creates a user and starts burrowd)" >&2; exit 2; }

Scripts/install-deps.sh
command -v bwrap >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null
bench_build --static burrow burrowd burrow-spawner
work=$(mktemp -d /var/tmp/burrow-bench-session.XXXXXX)
chmod 755 "$work"
tag=$(head -c4 /dev/urandom | od -An -tx1 | tr -d ' \n')
user=bbs$tag
group=bbsg$tag
pid=""
cleanup() {
    [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
    userdel --remove "$user" 2>/dev/null || true
    groupdel "$group" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
groupadd "$group"
useradd --create-home --shell /bin/sh --groups "$group" "$user"
cat >"$work/burrow.toml" <<POLICY
[daemon]
socket_group = "$group"
runners = ["group:$group"]
[users]
runs_per_minute = 100000
max_concurrent = 64
POLICY
bench_echo_profile "$work/bench.toml"
chmod 644 "$work/burrow.toml"
export BURROW_PROFILE_PATH=$PWD/Profiles
export BURROW_AUDIT_DB=$work/audit.db
"$bin/burrowd" --policy "$work/burrow.toml" --socket "$work/burrowd.sock" --audit-db "$work/audit.db" --registry-db "$work/registry.db" \
    >"$work/burrowd.log" 2>&1 &
pid=$!
for _ in $(seq 200); do [ -S "$work/burrowd-session.sock" ] && break; sleep 0.05; done
[ -S "$work/burrowd-session.sock" ] || { cat "$work/burrowd.log" >&2; exit 1; }

echo "== $(nproc) CPUs; burrow run: $runs runs each way, alternating"
python3 - "$runs" "$bin/burrow" "$work" "$user" <<'EOF'
import grp, json, os, pwd, statistics, subprocess, sys, time
runs, burrow, work, user = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
pw = pwd.getpwnam(user)
groups = [g.gr_gid for g in grp.getgrall() if user in g.gr_mem]
true = "/bin/true"
bwrap = json.loads(os.environ["BENCH_BWRAP_TRUE"])
root = [burrow, "run", "--profile", "minimal", "--", true]
client = [burrow, "run", "--socket", work + "/burrowd.sock", "--profile", "minimal", "--", true]

def once(argv, as_user=False):
    kw = dict(user=pw.pw_uid, group=pw.pw_gid, extra_groups=groups, cwd=pw.pw_dir) if as_user else dict(cwd=work)
    start = time.perf_counter()
    rc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kw)
    elapsed = (time.perf_counter() - start) * 1000
    if rc.returncode != 0:
        sys.exit(f"{' '.join(argv[:3])} failed ({rc.returncode}): {rc.stderr.decode()[:400]}")
    return elapsed

def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]

for _ in range(5):
    once(root), once(client, True), once(bwrap)
times = {"bwrap": [], "root": [], "user": []}
for _ in range(runs):
    times["bwrap"].append(once(bwrap))
    times["root"].append(once(root))
    times["user"].append(once(client, True))
print(f"{'variant':44} {'median':>8} {'p99':>8}  (ms)")
for name, label in [("bwrap", "bwrap (comparable), for scale"), ("root", "burrow run, root (in process)"), ("user", "burrow run, a user (through burrowd)")]:
    print(f"{label:44} {statistics.median(times[name]):8.2f} {pct(times[name], 99):8.2f}")
added = statistics.median(times["user"]) - statistics.median(times["root"])
print(f"user / root median: {statistics.median(times['user']) / statistics.median(times['root']):.2f}x; "
      f"user / bwrap: {statistics.median(times['user']) / statistics.median(times['bwrap']):.2f}x")
ok = added <= 1.0
print(f"target <= 1 ms added by the client path (median): {added:+.2f} ms ({'meets' if ok else 'MISSES'})")
open(work + "/run-ok", "w").write("1" if ok else "0")
EOF

echo "== MCP: $rounds rounds of $samples sequential tools/call each way (after 500 warm-up calls)"
server=(/usr/bin/python3 "$PWD/Tests/MCP/echo_server.py")
repo=$PWD
results=()
for round in $(seq "$rounds"); do
    rooted=$(/usr/bin/python3 Tests/MCP/bench_client.py "$samples" -- "$bin/burrow" mcp --profile "$work/bench.toml" -- "${server[@]}")
    client=$(cd "/home/$user" && setpriv --reuid "$user" --regid "$user" --init-groups /usr/bin/python3 "$repo/Tests/MCP/bench_client.py" "$samples" -- \
        "$bin/burrow" mcp --socket "$work/burrowd.sock" --profile "$work/bench.toml" -- "${server[@]}")
    echo "round $round: root $rooted"
    echo "round $round: user $client"
    results+=("$rooted" "$client")
done
python3 - "$work" "${results[@]}" <<'PY'
import json, os, statistics, sys
work = sys.argv[1]
rows = [json.loads(r) for r in sys.argv[2:]]
root, user = rows[0::2], rows[1::2]
med = lambda rs, k: statistics.median(r[k] for r in rs)
print(f"root (relay in burrow):  p50 {med(root, 'p50'):.0f} us, p99 {med(root, 'p99'):.0f} us")
print(f"user (relay in burrowd): p50 {med(user, 'p50'):.0f} us, p99 {med(user, 'p99'):.0f} us")
added = med(user, "p50") - med(root, "p50")
ok = added <= 100
print(f"target <= 0.1 ms added per call by the client path (p50): {added / 1000:+.3f} ms ({'meets' if ok else 'MISSES'})")
run_ok = open(work + "/run-ok").read() == "1"
sys.exit(0 if (ok and run_ok) or os.environ["BURROW_BENCH_SMOKE"] == "1" else 1)
PY
