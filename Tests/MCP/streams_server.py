"""A stdio MCP server (standard library only) that speaks first, for the
tests of burrowd's server-to-client stream. Tools:
  ask      sends a logging notification, asks the client to sample
           (sampling/createMessage), and answers with what the client said;
  notify   sends COUNT logging notifications, then answers."""
import json, sys

TOOLS = [
    {"name": "ask", "description": "asks the client's model", "inputSchema": {"type": "object", "properties": {"question": {"type": "string"}}, "required": ["question"]}},
    {"name": "notify", "description": "sends notifications", "inputSchema": {"type": "object", "properties": {"count": {"type": "integer"}}, "required": ["count"]}},
]


def send(message):
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


asking = {}  # our request's id -> the tools/call waiting for its answer
for line in sys.stdin:
    m = json.loads(line)
    method, id = m.get("method"), m.get("id")
    if method is None and id in asking:
        call = asking.pop(id)
        text = m["result"]["content"]["text"] if "result" in m else "error " + json.dumps(m.get("error"))
        send({"jsonrpc": "2.0", "id": call, "result": {"content": [{"type": "text", "text": "sampled: " + text}]}})
        continue
    if id is None:
        continue
    if method == "initialize":
        result = {"protocolVersion": m["params"]["protocolVersion"], "capabilities": {"tools": {}, "logging": {}}, "serverInfo": {"name": "streams", "version": "1"}}
    elif method == "tools/list":
        result = {"tools": TOOLS}
    elif method == "tools/call" and m["params"]["name"] == "ask":
        send({"jsonrpc": "2.0", "method": "notifications/message", "params": {"level": "info", "data": "asking the client"}})
        asking["srv-%d" % (len(asking) + 1)] = id
        question = m["params"]["arguments"]["question"]
        send({"jsonrpc": "2.0", "id": "srv-%d" % len(asking), "method": "sampling/createMessage",
              "params": {"messages": [{"role": "user", "content": {"type": "text", "text": question}}], "maxTokens": 16}})
        continue
    elif method == "tools/call":
        count = m["params"]["arguments"]["count"]
        for i in range(count):
            send({"jsonrpc": "2.0", "method": "notifications/message", "params": {"level": "info", "data": "note %d" % (i + 1)}})
        result = {"content": [{"type": "text", "text": "sent %d" % count}]}
    else:
        result = {}
    send({"jsonrpc": "2.0", "id": id, "result": result})
