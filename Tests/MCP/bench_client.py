"""Times MCP tools/call round trips over stdio for Scripts/bench-mcp.sh: starts
COMMAND, does the handshake and tools/list, warms up, then makes SAMPLES
sequential echo calls and prints one JSON line of percentiles (microseconds).
Raw JSON-RPC lines, no SDK: the client's own cost stays small and steady.

    bench_client.py SAMPLES -- COMMAND...
"""
import json, subprocess, sys, time

samples = int(sys.argv[1])
cmd = sys.argv[sys.argv.index("--") + 1:]
p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
rd = p.stdout


def rpc(id, method, params):
    p.stdin.write((json.dumps({"jsonrpc": "2.0", "id": id, "method": method, "params": params}) + "\n").encode())
    while True:
        line = rd.readline()
        if not line:
            sys.exit(f"the server ended at request {id}")
        m = json.loads(line)
        if m.get("id") == id:
            if "error" in m:
                sys.exit(f"request {id} failed: {m['error']}")
            return m


rpc(0, "initialize", {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}})
p.stdin.write(b'{"jsonrpc":"2.0","method":"notifications/initialized"}\n')
rpc(1, "tools/list", {})
args = {"name": "echo", "arguments": {"text": "x" * 200}}
for i in range(500):
    rpc(2 + i, "tools/call", args)
times = []
for i in range(samples):
    t = time.perf_counter_ns()
    rpc(1000 + i, "tools/call", args)
    times.append((time.perf_counter_ns() - t) / 1000)
p.stdin.close()
p.wait()
times.sort()
print(json.dumps({"p50": times[len(times) // 2], "p90": times[len(times) * 9 // 10], "p99": times[len(times) * 99 // 100], "samples": samples}))
