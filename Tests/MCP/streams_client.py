"""The MCP Python SDK's client (initialize era) against Tests/MCP/streams_server.py
behind burrowd: the server's logging notification and its sampling request
reach the client over the session's GET stream (SSE), and the client's
sampling answer goes back in a POST. Prints one line per step.

    streams_client.py SOCKET ENDPOINT
    streams_client.py https://HOST:PORT/v1/tools/TOOL/mcp CA CERT KEY
"""
import asyncio, json, ssl, sys
import httpx2
import mcp.types as types
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

logs = []


async def sampling(context, params):
    question = params.messages[0].content.text
    return types.CreateMessageResult(role="assistant", content=types.TextContent(type="text", text="4" if question == "2+2?" else "?"), model="test")


async def logging(params):
    logs.append(params.data)


def text(res):
    return "".join(getattr(c, "text", "") for c in res.content)


async def main():
    if sys.argv[1].startswith("https://"):
        url, ca, cert, key = sys.argv[1:5]
        context = ssl.create_default_context(cafile=ca)
        context.load_cert_chain(cert, key)
        http = httpx2.AsyncClient(verify=context, timeout=30)
    else:
        url = "http://burrowd" + sys.argv[2]
        http = httpx2.AsyncClient(transport=httpx2.AsyncHTTPTransport(uds=sys.argv[1]), timeout=30)
    async with streamable_http_client(url, http_client=http) as (r, w):
        async with ClientSession(r, w, sampling_callback=sampling, logging_callback=logging) as s:
            await s.initialize()
            res = await asyncio.wait_for(s.call_tool("ask", {"question": "2+2?"}), 20)
            print("ask", json.dumps(text(res)))
            res = await asyncio.wait_for(s.call_tool("notify", {"count": 3}), 20)
            print("notify", json.dumps(text(res)))
            for _ in range(100):
                if len(logs) >= 4:
                    break
                await asyncio.sleep(0.05)
            print("logs", json.dumps(logs))
    sys.stdout.flush()


asyncio.run(main())
