"""A minimal MCP stdio server (standard library only) with one tool, echo,
for Scripts/bench-mcp.sh: the server's own cost per call stays small and
steady, so the relay's share can be measured."""
import json, sys

TOOLS = [{"name": "echo", "description": "returns its text", "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}}]
out = sys.stdout
for line in sys.stdin:
    m = json.loads(line)
    id, method = m.get("id"), m.get("method")
    if id is None:
        continue
    if method == "initialize":
        result = {"protocolVersion": m["params"]["protocolVersion"], "capabilities": {"tools": {}}, "serverInfo": {"name": "echo", "version": "1"}}
    elif method == "tools/list":
        result = {"tools": TOOLS}
    elif method == "tools/call":
        result = {"content": [{"type": "text", "text": m["params"]["arguments"]["text"]}]}
    else:
        result = {}
    out.write(json.dumps({"jsonrpc": "2.0", "id": id, "result": result}) + "\n")
    out.flush()
