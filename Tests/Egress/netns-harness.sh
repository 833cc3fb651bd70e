#!/usr/bin/env bash
# Test harness for the egress proxy: run it under `unshare --net --mount
# --fork`. Inside that private network namespace (nothing leaves it) it gives
# loopback two "public" addresses, 203.0.113.10 and 2001:db8::10, maps test
# names to them and to addresses the proxy must refuse (a private /etc/hosts,
# bind-mounted in this mount namespace only), serves a web root with a file and
# a git repository over dumb HTTP on ports 8080 and 80, runs the command given
# after `--`, and stops the servers.
#
#   unshare --net --mount --fork Tests/Egress/netns-harness.sh WORKDIR -- COMMAND...
set -euo pipefail
work=$1
shift
[ "${1:-}" = "--" ] && shift

ip link set lo up
ip addr add 203.0.113.10/32 dev lo
ip -6 addr add 2001:db8::10/128 dev lo nodad

cat > "$work/hosts" <<HOSTS
127.0.0.1 localhost
203.0.113.10 allowed.test example.com
2001:db8::10 v6only.test
127.0.0.1 evil.test
169.254.169.254 meta.test
203.0.113.10 other.test
HOSTS
mount --bind "$work/hosts" /etc/hosts

mkdir -p "$work/www"
echo "hello through the proxy" > "$work/www/index.html"
cat > "$work/www/page.html" <<'HTML'
<!DOCTYPE html>
<html><head><title>A page</title></head>
<body><article><h1>Burrow page</h1><p>This paragraph is long enough for a readability extractor to keep it as the main content of the page, converted to markdown.</p></article></body></html>
HTML
if [ ! -d "$work/www/repo.git" ]; then
    git init -q --bare "$work/www/repo.git"
    git -C "$work/www/repo.git" symbolic-ref HEAD refs/heads/main
    tree=$(git -C "$work/www/repo.git" mktree </dev/null)
    commit=$(GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@t GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@t \
        git -C "$work/www/repo.git" commit-tree "$tree" -m init)
    git -C "$work/www/repo.git" update-ref refs/heads/main "$commit"
    git -C "$work/www/repo.git" update-server-info
fi

pids=()
for port in 8080 80; do
    /usr/bin/python3 -m http.server "$port" --bind :: --directory "$work/www" >"$work/server-$port.log" 2>&1 &
    pids+=($!)
done
# SIGKILL: the caller may have left SIGTERM blocked (the test runner does), and a
# blocked mask is inherited.
trap 'kill -KILL "${pids[@]}" 2>/dev/null; wait 2>/dev/null' EXIT
for port in 8080 80; do
    for _ in $(seq 100); do
        (exec 3<>/dev/tcp/203.0.113.10/$port) 2>/dev/null && break
        sleep 0.05
    done
done
"$@"
