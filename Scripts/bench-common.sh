# Sourced by every Scripts/bench-*.sh (not run on its own).
#
# BURROW_BENCH_SMOKE=1 is the smoke mode Scripts/test.sh (so CI) runs every
# benchmark in: the debug build the tests already made, a handful of
# iterations, and no speed target checked. The script must still run end to
# end, print its figures and pass its correctness checks (an audit trail
# complete, a server that answers), so a benchmark cannot silently rot.
smoke=${BURROW_BENCH_SMOKE:-0}
export BURROW_BENCH_SMOKE=$smoke

# bench_build [--static] PRODUCT...: builds the products and sets $bin to
# the directory holding them (release and, with --static, the static Swift
# runtime, as shipped; in smoke mode the debug build).
bench_build() {
    local static=
    if [ "${1:-}" = --static ]; then static=--static-swift-stdlib; shift; fi
    local product
    if [ "$smoke" = 1 ]; then
        echo "== building $* (smoke mode: the debug build, a few iterations, no target checked)"
    else
        echo "== building $* (release${static:+, static Swift runtime})"
    fi
    for product in "$@"; do
        if [ "$smoke" = 1 ]; then
            swift build --product "$product" 2>&1 | tail -1
        else
            # shellcheck disable=SC2086 # empty or one flag
            swift build -c release $static --product "$product" 2>&1 | tail -1
        fi
    done
    if [ "$smoke" = 1 ]; then bin=$(swift build --show-bin-path); else bin=$(swift build -c release --show-bin-path); fi
}

# bench_count FULL SMOKE: the iteration count of this mode.
bench_count() { if [ "$smoke" = 1 ]; then echo "$2"; else echo "$1"; fi; }

# The comparable bwrap sandbox every benchmark times /bin/true in, as a JSON
# argv (Python reads it from the environment): every namespace, a read-only
# /usr, /proc, /dev and a tmpfs /tmp, a non-root uid, no capabilities.
export BENCH_BWRAP_TRUE='["bwrap", "--unshare-all", "--unshare-user", "--uid", "524288", "--gid", "524288", "--ro-bind", "/usr", "/usr", "--symlink", "usr/bin", "/bin", "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64", "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--new-session", "--die-with-parent", "--cap-drop", "ALL", "/bin/true"]'

# bench_echo_profile FILE: the profile of Tests/MCP/echo_server.py that the
# MCP benchmarks relay (mcp-base by name: BURROW_PROFILE_PATH must hold
# Profiles/), with no rate limit of its own in the way.
bench_echo_profile() {
    cat >"$1" <<TOML
extends = "mcp-base"
[tool]
id = "mcp-bench"
name = "MCP echo server for the relay benchmarks"
version = "1"
[permissions]
file_read = ["/usr/lib/python3.11/**", "$PWD/Tests/MCP/**"]
[mcp_policy.rate_limits]
"tools/call" = 100000000
TOML
    chmod 644 "$1"
}
