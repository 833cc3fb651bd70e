"""Drives an MCP server over burrowd's Streamable HTTP endpoint on its Unix
socket with the MCP Python SDK's client: lists tools, calls get_current_time,
then with schema-invalid arguments. MODE is `legacy` (initialize) or `auto`
(server/discover first). Prints one line per step. Leaving the client sends
DELETE, which ends the session.

    http_client.py SOCKET ENDPOINT MODE
    http_client.py https://HOST:PORT/v1/tools/TOOL/mcp MODE CA CERT KEY   (over TLS, with a client certificate)
"""
import asyncio, json, ssl, sys
import httpx2
from mcp import ClientSession
from mcp.client.client import Client
from mcp.client.streamable_http import streamable_http_client


def text(res):
    return "".join(getattr(c, "text", "") for c in res.content)


async def steps(call_tool, list_tools):
    if list_tools:
        tools = await list_tools()
        print("tools", sorted(t.name for t in tools.tools))
    res = await call_tool("get_current_time", {"timezone": "Europe/Paris"})
    print("ok", res.is_error, json.dumps(text(res)[:200]))
    try:
        res = await call_tool("get_current_time", {"timezone": 42})
        print("bad", res.is_error)
    except Exception as e:
        print("bad raised", type(e).__name__, json.dumps(str(e)[:200]))
    sys.stdout.flush()


async def main():
    if sys.argv[1].startswith("https://"):
        url, mode, ca, cert, key = sys.argv[1:6]
        context = ssl.create_default_context(cafile=ca)
        context.minimum_version = ssl.TLSVersion.TLSv1_3
        context.load_cert_chain(cert, key)
        http = httpx2.AsyncClient(verify=context, timeout=30)
    else:
        socket, endpoint, mode = sys.argv[1:4]
        url = "http://burrowd" + endpoint
        http = httpx2.AsyncClient(transport=httpx2.AsyncHTTPTransport(uds=socket), timeout=30)
    transport = streamable_http_client(url, http_client=http)
    if mode == "legacy":
        async with transport as (r, w):
            async with ClientSession(r, w) as s:
                await s.initialize()
                await steps(s.call_tool, s.list_tools)
    else:
        async with Client(transport, mode=mode, read_timeout_seconds=30) as c:
            print("version", c.session.protocol_version)
            await steps(c.call_tool, None)


asyncio.run(main())
