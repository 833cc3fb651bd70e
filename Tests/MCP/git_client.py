"""Drives mcp-server-git through `burrow mcp` with the MCP Python SDK's client:
status, add, commit and log in REPO, then status of OTHER and of /etc (which
the sandbox must hide), then a call with schema-invalid arguments. Prints one
line per call: `call NAME IS_ERROR "TEXT"` or `call NAME raised ...`.

    git_client.py REPO OTHER FILE -- COMMAND...
"""
import asyncio, json, os, sys
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client


def text(res):
    return "".join(getattr(c, "text", "") for c in res.content)


async def main():
    repo, other, name = sys.argv[1:4]
    cmd = sys.argv[sys.argv.index("--") + 1:]
    async with stdio_client(StdioServerParameters(command=cmd[0], args=cmd[1:], env=dict(os.environ))) as (r, w):
        async with ClientSession(r, w) as s:
            await s.initialize()
            tools = await s.list_tools()
            print("tools", sorted(t.name for t in tools.tools))
            for tool, args in [
                ("git_status", {"repo_path": repo}),
                ("git_add", {"repo_path": repo, "files": [name]}),
                ("git_commit", {"repo_path": repo, "message": "added through burrow"}),
                ("git_log", {"repo_path": repo}),
                ("git_status", {"repo_path": other}),
                ("git_status", {"repo_path": "/etc"}),
                ("git_status", {"repo": repo}),
            ]:
                try:
                    res = await s.call_tool(tool, args)
                    print("call", tool, res.is_error, json.dumps(text(res)[:300]))
                except Exception as e:
                    print("call", tool, "raised", type(e).__name__, json.dumps(str(e)[:300]))


asyncio.run(main())
