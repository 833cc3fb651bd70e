"""Drives one MCP stdio server with the official MCP Python SDK client and
checks its answers.

    mcp_client.py SPEC.json -- SERVER_COMMAND...

SPEC is {"calls": [{"tool": NAME, "arguments": {...}, "expect": TEXT,
"isError": false}, ...]}: each call must come back with that isError and
TEXT somewhere in its text. A string argument "{{N.key}}" is replaced by the
first JSON string value named `key` in call N's answer (servers that hand out
hashes to quote back). Prints one JSON line: {"ok": bool, "tools":
[...], "initializeSeconds": s, "calls": [{"tool", "isError", "text",
"ok"}], "peakKiB": n}; exits 0 when every call passed, 1 otherwise.
peakKiB is the largest peak resident size among the client's descendants
(burrow's own supervisor left out), read before the session closes.
"""
import asyncio
import json
import os
import re
import sys
import time

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client


def peak_kib(skip: str) -> int:
    """The largest VmHWM among this process's descendants, `skip` (burrow's
    supervisor) left out: the server's peak resident memory so far."""
    best, todo = 0, [os.getpid()]
    while todo:
        pid = todo.pop()
        try:
            for tid in os.listdir(f"/proc/{pid}/task"):
                todo += [int(c) for c in open(f"/proc/{pid}/task/{tid}/children").read().split()]
            if pid == os.getpid() or os.path.basename(os.readlink(f"/proc/{pid}/exe")) == skip:
                continue
            for line in open(f"/proc/{pid}/status"):
                if line.startswith("VmHWM:"):
                    best = max(best, int(line.split()[1]))
        except OSError:
            continue
    return best


def resolve(value, answers):
    """Arguments with "{{N.key}}" filled in from earlier answers."""
    if isinstance(value, dict):
        return {k: resolve(v, answers) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, answers) for v in value]
    match = re.fullmatch(r"\{\{(\d+)\.(\w+)\}\}", value) if isinstance(value, str) else None
    if not match:
        return value
    found = re.search(r'"%s":\s*"([^"]*)"' % match.group(2), answers[int(match.group(1))])
    return found.group(1) if found else value


def text_of(result) -> str:
    parts = [getattr(c, "text", "") or "" for c in result.content]
    structured = getattr(result, "structuredContent", None) or getattr(result, "structured_content", None)
    if structured and not any(parts):
        parts.append(json.dumps(structured))
    return "\n".join(parts)


async def main() -> int:
    spec = json.load(open(sys.argv[1]))
    command = sys.argv[sys.argv.index("--") + 1 :]
    # The whole environment: the SDK passes only a safe subset by default, and
    # burrow needs BURROW_AUDIT_DB (the tests' own audit log).
    params = StdioServerParameters(command=command[0], args=command[1:], env=dict(os.environ))
    report = {"ok": True, "tools": [], "calls": []}
    started = time.monotonic()
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            report["initializeSeconds"] = round(time.monotonic() - started, 3)
            report["tools"] = [t.name for t in (await session.list_tools()).tools]
            for call in spec["calls"]:
                answers = [c["text"] for c in report["calls"]]
                result = await session.call_tool(call["tool"], resolve(call.get("arguments", {}), answers))
                is_error = bool(getattr(result, "isError", False) or getattr(result, "is_error", False))
                text = text_of(result)
                ok = is_error == call.get("isError", False) and call["expect"] in text
                report["ok"] = report["ok"] and ok
                report["calls"].append({"tool": call["tool"], "isError": is_error, "text": text[:2000], "ok": ok})
            report["peakKiB"] = peak_kib("burrow")
    print(json.dumps(report))
    return 0 if report["ok"] else 1


sys.exit(asyncio.run(main()))
