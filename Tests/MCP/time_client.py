"""Drives mcp-server-time through `burrow mcp` with the MCP Python SDK's client:
lists tools, makes a valid call, one with schema-invalid arguments and one
for a tool the server never listed. Prints one line per step.

    time_client.py -- COMMAND...
"""
import asyncio, json, os, sys
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
async def main():
    cmd = sys.argv[sys.argv.index("--") + 1:]
    async with stdio_client(StdioServerParameters(command=cmd[0], args=cmd[1:], env=dict(os.environ))) as (r, w):
        async with ClientSession(r, w) as s:
            await s.initialize()
            tools = await s.list_tools()
            print("tools", [t.name for t in tools.tools])
            res = await s.call_tool("get_current_time", {"timezone": "Europe/Paris"})
            print("ok", getattr(res, "is_error", None), "".join(getattr(c, "text", "") for c in res.content)[:200])
            try:
                res = await s.call_tool("get_current_time", {"timezone": 42})
                print("bad", getattr(res, "is_error", None))
            except Exception as e:
                print("bad raised", type(e).__name__, e)
            try:
                res = await s.call_tool("rm_rf", {})
                print("unknown", getattr(res, "is_error", None), "".join(getattr(c, "text", "") for c in res.content)[:200])
            except Exception as e:
                print("unknown raised", type(e).__name__, e)
asyncio.run(main())
