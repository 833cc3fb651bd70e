"""An MCP stdio server (standard library only) whose health a test sets:
argv[1] names a file holding `ok` (answers like echo_server.py), `crash`
(exits 3 at once) or `hang` (reads requests, never answers)."""
import json, sys, time

mode = open(sys.argv[1]).read().strip()
if mode == "crash":
    sys.exit(3)
TOOLS = [{"name": "echo", "description": "returns its text", "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}}}]
for line in sys.stdin:
    m = json.loads(line)
    id, method = m.get("id"), m.get("method")
    if id is None or mode == "hang":
        continue
    if method == "initialize":
        result = {"protocolVersion": m["params"]["protocolVersion"], "capabilities": {"tools": {}}, "serverInfo": {"name": "flaky", "version": "1"}}
    elif method == "tools/list":
        result = {"tools": TOOLS}
    elif method == "tools/call":
        result = {"content": [{"type": "text", "text": m["params"]["arguments"].get("text", "")}]}
    else:
        result = {}
    sys.stdout.write(json.dumps({"jsonrpc": "2.0", "id": id, "result": result}) + "\n")
    sys.stdout.flush()
