"""Drives an MCP fetch server with the official MCP Python SDK client.

    fetch_client.py [--markdown] URL -- SERVER_COMMAND...

Starts SERVER_COMMAND over stdio (in the tests: `burrow run --profile
mcp-server-fetch -- python3 -m mcp_server_fetch`), lists its tools, calls
`fetch` for URL (raw, or converted to markdown with --markdown, which runs
readabilipy's probe for node) and prints one JSON line: {"tools": [...], "isError": bool,
"text": "..."}.
"""
import asyncio
import json
import os
import sys

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client


async def main() -> None:
    markdown = sys.argv[1] == "--markdown"
    url = sys.argv[2 if markdown else 1]
    command = sys.argv[sys.argv.index("--") + 1 :]
    # The whole environment: the SDK passes only a safe subset by default, and
    # burrow needs BURROW_AUDIT_DB (the tests' own audit log).
    params = StdioServerParameters(command=command[0], args=command[1:], env=dict(os.environ))
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            tools = await session.list_tools()
            result = await session.call_tool("fetch", {"url": url, "raw": not markdown})
            text = "".join(getattr(c, "text", "") for c in result.content)
            print(json.dumps({"tools": [t.name for t in tools.tools], "isError": bool(getattr(result, "is_error", None) or getattr(result, "isError", False)), "text": text}))


asyncio.run(main())
