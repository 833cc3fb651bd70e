"""An MCP stdio server that misbehaves on purpose, for Burrow's tests.

Standard library only. Each tool tries something a sandboxed server must
not be able to do, while the call is in flight, and reports what happened:

    touch_files   reads /etc/shadow, sets an extended attribute, makes a device node
    open_network  opens an IPv4 socket and connects to 192.0.2.1:80
    fork_bomb     forks until it cannot (children fork too)
    echo          behaves: returns its text
"""
import json, os, socket, stat, sys, time

TOOLS = [
    {"name": "touch_files", "description": "reads and writes where it should not", "inputSchema": {"type": "object", "properties": {}}},
    {"name": "open_network", "description": "opens a network connection", "inputSchema": {"type": "object", "properties": {}}},
    {"name": "fork_bomb", "description": "forks without end", "inputSchema": {"type": "object", "properties": {}}},
    {"name": "stray_print", "description": "prints to stdout", "inputSchema": {"type": "object", "properties": {}}},
    {"name": "bad_frame", "description": "writes an ambiguous message", "inputSchema": {"type": "object", "properties": {}}},
    {"name": "echo", "description": "returns its text", "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}},
]


def attempt(what, action):
    try:
        action()
        return f"{what}: succeeded"
    except OSError as e:
        return f"{what}: {type(e).__name__} errno {e.errno}"


def touch_files():
    path = "/tmp/burrow-misbehaving"
    open(path, "w").close()
    return [
        attempt("read /etc/shadow", lambda: open("/etc/shadow").read()),
        attempt("setxattr", lambda: os.setxattr(path, "user.burrow", b"x")),
        attempt("mknod", lambda: os.mknod("/tmp/burrow-dev", stat.S_IFCHR | 0o600, os.makedev(1, 3))),
    ]


def open_network():
    def connect():
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(2)
        s.connect(("192.0.2.1", 80))
    return [attempt("connect 192.0.2.1:80", connect)]


def fork_bomb():
    made, refused = 0, None
    for _ in range(200):
        try:
            pid = os.fork()
        except OSError as e:
            refused = e.errno
            break
        if pid == 0:
            while True:  # every child forks too, until the sandbox says no
                try:
                    os.fork()
                except OSError:
                    time.sleep(60)
        made += 1
    time.sleep(5)  # still in the call when the supervisor next looks
    return [f"forked {made} times, then errno {refused}"]


def answer(id, result):
    sys.stdout.write(json.dumps({"jsonrpc": "2.0", "id": id, "result": result}) + "\n")
    sys.stdout.flush()


if "--print-at-import" in sys.argv:
    print("misbehaving server 1.0 starting (a banner, not JSON)", flush=True)

for line in sys.stdin:
    message = json.loads(line)
    method, id = message.get("method"), message.get("id")
    if id is None:
        continue
    if method == "initialize":
        answer(id, {"protocolVersion": message["params"]["protocolVersion"], "capabilities": {"tools": {}}, "serverInfo": {"name": "misbehaving", "version": "1"}})
    elif method == "tools/list":
        answer(id, {"tools": TOOLS})
    elif method == "tools/call":
        name = message["params"]["name"]
        if name == "echo":
            lines = [message["params"]["arguments"]["text"]]
        elif name == "stray_print":
            print("debug: stray_print was called", flush=True)
            lines = ["printed"]
        elif name == "bad_frame":
            # Which "result" would the client act on? The relay must not guess.
            sys.stdout.write('{"jsonrpc": "2.0", "id": %s, "result": {"content": []}, "result": {"isError": true}}\n' % json.dumps(id))
            sys.stdout.flush()
            time.sleep(60)
            lines = []
        else:
            lines = {"touch_files": touch_files, "open_network": open_network, "fork_bomb": fork_bomb}[name]()
        answer(id, {"content": [{"type": "text", "text": "\n".join(lines)}], "isError": False})
    else:
        answer(id, {})
