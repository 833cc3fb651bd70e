"""Calls tools in order through an MCP stdio server with the MCP Python SDK's
client (`echo` gets {"text": "hello"}, the others {}). MODE is `legacy` (the
initialize handshake), `auto` (server/discover, falling back to initialize)
or a protocol version such as 2026-07-28 (no handshake); with a mode other
than legacy, no tools/list comes before the first call. Prints one line per
call: `call NAME "TEXT"` or `call NAME raised ...`.

    calls_client.py MODE TOOL[,TOOL...] -- COMMAND...
"""
import asyncio, json, os, sys
from mcp import ClientSession, StdioServerParameters
from mcp.client.client import Client
from mcp.client.stdio import stdio_client


def text(res):
    return "".join(getattr(c, "text", "") for c in res.content)


async def calls(call_tool, names):
    for name in names:
        try:
            res = await call_tool(name, {"text": "hello"} if name == "echo" else ({"timezone": "Europe/Paris"} if name == "get_current_time" else {}))
            print("call", name, json.dumps(text(res)[:300]))
        except Exception as e:
            print("call", name, "raised", type(e).__name__, json.dumps(str(e)[:300]))
        sys.stdout.flush()


async def main():
    mode, names = sys.argv[1], sys.argv[2].split(",")
    cmd = sys.argv[sys.argv.index("--") + 1:]
    params = StdioServerParameters(command=cmd[0], args=cmd[1:], env=dict(os.environ))
    if mode == "legacy":
        async with stdio_client(params) as (r, w):
            async with ClientSession(r, w) as s:
                await s.initialize()
                await s.list_tools()
                await calls(s.call_tool, names)
    else:
        async with Client(params, mode=mode, read_timeout_seconds=30) as c:
            print("version", c.session.protocol_version)
            await calls(c.call_tool, names)


asyncio.run(main())
