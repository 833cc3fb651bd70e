"""burrowd's abuse suite: a live burrowd attacked as hostile callers would.

Standard library only; run as root with /usr/bin/python3 (a role-less user is
played by forked children that drop to uid/gid 65534). Each case checks the
documented answer, and meanwhile root's /v1/health is probed on fresh
connections every 25 ms; burrowd's resident memory and open descriptors are
read before, at their peak during, and after each case.

    abuse.py --socket S --pid PID --audit-dir D --repo R [--report FILE] [CASE...]

The audit log lives in --audit-dir, a small tmpfs the disk-full case fills.
Prints one line per case and a JSON report; exit 0 when every check held.
"""
import argparse, json, os, socket, ssl, statistics, struct, sys, threading, time

NOBODY = 65534
FAILURES = []


def check(condition, what):
    if not condition:
        FAILURES.append(what)
        print("    FAILED:", what, flush=True)
    return condition


# ---------------------------------------------------------------- HTTP over the socket

def connect():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(ARGS.socket)
    return s


def read_response(s, timeout=30):
    """One HTTP/1.1 response: (status, headers, body bytes); status 0 when the connection closed first."""
    s.settimeout(timeout)
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                return 0, {}, data
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.strip().lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:] if ":" in l)}
        if "content-length" in headers:
            n = int(headers["content-length"])
            while len(body) < n:
                chunk = s.recv(65536)
                if not chunk:
                    break
                body += chunk
        elif headers.get("transfer-encoding") == "chunked":
            while not body.endswith(b"0\r\n\r\n"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                body += chunk
        return status, headers, body
    except (socket.timeout, ConnectionResetError, BrokenPipeError):
        return 0, {}, data


def request(method, path, body=None, raw=None, headers=None, timeout=30):
    """One request on a fresh connection: (status, parsed JSON or raw body)."""
    s = connect()
    try:
        payload = raw if raw is not None else (json.dumps(body).encode() if body is not None else b"")
        h = {"Host": "burrowd", "Content-Length": str(len(payload)), "Connection": "close"}
        h.update(headers or {})
        head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in h.items()) + "\r\n"
        s.sendall(head.encode() + payload)
        status, _, data = read_response(s, timeout)
        try:
            return status, json.loads(data)
        except ValueError:
            return status, data
    finally:
        s.close()


def raw_exchange(data, timeout=10):
    s = connect()
    try:
        s.sendall(data)
        status, _, body = read_response(s, timeout)
        try:
            return status, json.loads(body)
        except ValueError:
            return status, body
    finally:
        s.close()


def error_code(answer):
    return answer.get("error", {}).get("code") if isinstance(answer, dict) else None


# ---------------------------------------------------------------- what burrowd holds

def footprint():
    rss = 0
    with open(f"/proc/{ARGS.pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    return {"rssKiB": rss, "fds": len(os.listdir(f"/proc/{ARGS.pid}/fd"))}


class Probe:
    """Root's health on fresh connections every 25 ms, and burrowd's peak footprint."""

    def __init__(self):
        self.latencies, self.failures, self.peak = [], 0, footprint()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        while not self.stop.is_set():
            t = time.monotonic()
            try:
                status, answer = request("GET", "/v1/health", timeout=10)
                ok = status == 200 and answer.get("status") == "ok"
            except OSError:
                ok = False
            self.latencies.append((time.monotonic() - t) * 1000)
            self.failures += 0 if ok else 1
            f = footprint()
            self.peak = {k: max(self.peak[k], f[k]) for k in f}
            time.sleep(0.025)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *_):
        self.stop.set()
        self.thread.join()


def as_nobody(work):
    """Runs work() in a child as uid/gid 65534 (no role; in the socket's group); returns its JSON result."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            result = work()
        except Exception as e:  # reported, never raised past the fork
            result = {"error": repr(e)}
        os.write(w, json.dumps(result).encode())
        os._exit(0)
    os.close(w)
    out = b""
    while True:
        chunk = os.read(r, 65536)
        if not chunk:
            break
        out += chunk
    os.close(r)
    os.waitpid(pid, 0)
    return json.loads(out or b"{}")


def audit(tool, query=""):
    status, events = request("GET", f"/v1/security/audit/{tool}?limit=10000{query}")
    return events if status == 200 else []


REPORT = []


def case(name):
    def wrap(fn):
        CASES.append((name, fn))
        return fn
    return wrap


CASES = []


def run_case(name, fn):
    print(f"== {name}", flush=True)
    before = footprint()
    start = len(FAILURES)
    t = time.monotonic()
    with Probe() as probe:
        detail = fn() or {}
    # Give burrowd its timeouts to settle (closed connections, ended sandboxes).
    settle = time.monotonic() + 15
    after = footprint()
    while time.monotonic() < settle and after["fds"] > before["fds"] + 4:
        time.sleep(0.25)
        after = footprint()
    lat = sorted(probe.latencies) or [0]
    entry = {
        "case": name, "seconds": round(time.monotonic() - t, 1), "before": before, "peak": probe.peak, "after": after,
        "health": {"probes": len(probe.latencies), "failed": probe.failures, "p50ms": round(statistics.median(lat), 1),
                   "p99ms": round(lat[min(len(lat) - 1, int(len(lat) * 0.99))], 1), "maxms": round(lat[-1], 1)},
        "detail": detail,
    }
    check(probe.failures == 0, f"{name}: root's health failed {probe.failures} times during the abuse")
    # A bound that catches a stall (validations once froze health for 20 s), not a speed target.
    check(entry["health"]["p99ms"] < 250 and entry["health"]["maxms"] < 1000, f"{name}: root's health took up to {entry['health']['maxms']} ms during the abuse")
    check(after["fds"] <= before["fds"] + 4, f"{name}: descriptors {before['fds']} -> {after['fds']} after")
    check(after["rssKiB"] <= before["rssKiB"] + 64 * 1024, f"{name}: resident memory {before['rssKiB']} -> {after['rssKiB']} KiB after")
    entry["passed"] = len(FAILURES) == start
    REPORT.append(entry)
    h = entry["health"]
    print(f"   health p50 {h['p50ms']} ms, p99 {h['p99ms']} ms, max {h['maxms']} ms over {h['probes']} probes; "
          f"fds {before['fds']}/{probe.peak['fds']}/{after['fds']}, RSS {before['rssKiB']}/{probe.peak['rssKiB']}/{after['rssKiB']} KiB "
          f"(before/peak/after) {detail}", flush=True)


# ---------------------------------------------------------------- the HTTPS listener

def tls_context(cert=True):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_verify_locations(os.path.join(ARGS.tls_dir, "ca.pem"))
    if cert:
        ctx.load_cert_chain(os.path.join(ARGS.tls_dir, "client.pem"), os.path.join(ARGS.tls_dir, "client.key"))
    return ctx


def tcp():
    return socket.create_connection(("127.0.0.1", ARGS.https_port), timeout=10)


def closed_within(s, seconds):
    """Seconds until the peer closed the connection (reading whatever it sends), or None."""
    s.settimeout(seconds)
    t = time.monotonic()
    try:
        while s.recv(65536):
            pass
        return round(time.monotonic() - t, 2)
    except (socket.timeout, TimeoutError):
        return None
    except OSError:
        return round(time.monotonic() - t, 2)


# ---------------------------------------------------------------- the cases

TOML_HEAD = 'extends = "minimal"\n[tool]\nid = "t"\nname = "t"\nversion = "1"\n'


@case("audit-disk-full")
def audit_disk_full():
    # First, while the log is new: SQLite reuses its write-ahead log's space, so an older log may take a small event on a full disk.
    register("sleeper", TOML_HEAD.replace('"t"', '"sleeper"'), ["sleep"])
    filler = os.path.join(ARGS.audit_dir, "filler")
    result = {}

    def invoke(arguments):
        result["answer"] = request("POST", "/v1/tools/sleeper/invocations", {"arguments": arguments}, timeout=60)
    th = threading.Thread(target=invoke, args=(["1.5"],))
    th.start()
    time.sleep(0.7)
    with open(filler, "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass
    th.join()
    status, answer = result["answer"]
    check(status == 200 and isinstance(answer, dict) and answer.get("auditLost") is True, f"run during a full disk: {status} {str(answer)[:400]}")
    invocation = answer.get("id", "") if isinstance(answer, dict) else ""
    os.unlink(filler)
    status, answer = request("POST", "/v1/tools/sleeper/invocations", {"arguments": ["0"]}, timeout=60)
    check(status == 200 and not answer.get("auditLost"), f"the next run: {status} {str(answer)[:200]}")
    time.sleep(5.5)  # burrowd sweeps at most every 5 s: the run after that records the kept outcome
    request("POST", "/v1/tools/sleeper/invocations", {"arguments": ["0"]}, timeout=60)
    trail = [e for e in audit("sleeper") if e["context"].get("invocationID") == invocation]
    types = [e["type"] for e in trail]
    check(types == ["ToolInvoked", "ToolCompleted"] and trail[-1]["details"].get("recordedLate") is True, f"the trail of the run: {types}")
    check(not any(e["details"].get("reason") == "supervisor_lost" for e in audit("sleeper")), "a run relabelled supervisor_lost")
    return {"trail": types}


@case("deep-nesting")
def deep_nesting():
    dotted = ".".join(["a"] * 35000) + " = 1\n"
    status, report = request("POST", "/v1/security/validate", {"profile": dotted})
    check(status == 200 and report.get("valid") is False and "nested deeper than 32" in json.dumps(report), f"deep TOML: {status} {str(report)[:200]}")
    status, answer = request("POST", "/v1/security/validate", raw=b'{"profile": ' + b"[" * 100000 + b"]" * 100000 + b"}")
    check(status == 400 and error_code(answer) == "invalid_request" and "nested deeper than 64" in json.dumps(answer), f"deep JSON: {status} {str(answer)[:200]}")
    return {"tomlLevels": 35000, "jsonLevels": 100000}


@case("huge-grant-list")
def huge_grants():
    paths = [f"/srv/p{i}" for i in range(100000)]
    body = {"profile": {"tool": {"id": "t", "name": "t", "version": "1"}, "permissions": {"file_read": paths}}}
    results = []
    threads = [threading.Thread(target=lambda: results.append(request("POST", "/v1/security/validate", body))) for _ in range(4)]
    t = time.monotonic()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    took = time.monotonic() - t
    for status, answer in results:
        text = json.dumps(answer)
        refused = "100000 entries, more than the 4096" in text or "more than the 1048576 allowed" in text
        ok = (status == 200 and answer.get("valid") is False and refused) or (status == 429 and error_code(answer) == "too_many_validations")
        check(ok, f"100,000 grants: {status} {str(answer)[:200]}")
    return {"bodyBytes": len(json.dumps(body)), "concurrent": 4, "statuses": sorted(s for s, _ in results), "seconds": round(took, 2)}


@case("nul-bytes")
def nul_bytes():
    base = {"id": "nul", "metadata": {"name": "n", "version": "1"}, "profile": TOML_HEAD.replace('"t"', '"nul"'), "command": ["echo"]}
    bad = dict(base, command=["echo", "a\u0000b"])
    status, answer = request("POST", "/v1/tools", bad)
    check(status == 400 and "NUL" in json.dumps(answer), f"NUL in command: {status} {answer}")
    toml = base["profile"] + '[permissions]\nfile_read = ["/etc\\u0000/nonexistent"]\n'
    status, answer = request("POST", "/v1/tools", dict(base, profile=toml))
    check(status == 422 and "NUL character" in json.dumps(answer), f"NUL in a TOML path: {status} {str(answer)[:200]}")
    status, answer = request("POST", "/v1/tools", dict(base, command=["../../bin/sh"]))
    check(status == 400 and "normalised" in json.dumps(answer), f"'..' command: {status} {answer}")
    status, _ = request("POST", "/v1/tools", base)
    check(status in (200, 201, 409), f"registering the tool: {status}")
    status, answer = request("POST", "/v1/tools/nul/invocations", {"arguments": ["x\u0000y"]})
    check(status == 400 and "NUL" in json.dumps(answer), f"NUL in an argument: {status} {answer}")
    status, answer = request("POST", "/v1/tools/nul/invocations", {"environment": {"LANG": "C\u0000x"}})
    check(status == 400 and "NUL" in json.dumps(answer), f"NUL in an environment value: {status} {answer}")
    return {}


@case("strict-json")
def strict_json():
    status, answer = request("POST", "/v1/tools", raw=b'{"id": "t", "metadata": {"name": "T", "version": "1"}, "profile": "", "command": ["echo"], "rateLimts": {}}')
    check(status == 400 and "did you mean 'rateLimits'" in json.dumps(answer), f"unknown field: {status} {answer}")
    status, answer = request("POST", "/v1/tools", raw=b'{"id": "t", "id": "u"}')
    check(status == 400 and "duplicate key" in json.dumps(answer), f"duplicate key: {status} {answer}")
    status, answer = request("POST", "/v1/tools/nul/invocations", raw=b'{"argumnets": ["x"]}')
    check(status == 400 and "did you mean 'arguments'" in json.dumps(answer), f"misspelt arguments: {status} {answer}")
    return {}


@case("http-garbage")
def http_garbage():
    tries = {
        "bad request line": (b"GARBAGE\r\n\r\n", 400),
        "bad content-length": (b"POST /v1/security/validate HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", 400),
        "content-length and chunked": (b"POST /v1/security/validate HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
        "100 KB URL": (b"GET /" + b"a" * 100000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 431),
        "nothing at all (idle)": (b"", 0),
        "chunk of 2^64-1 bytes": (b"POST /v1/security/validate HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFF\r\nabc", 408),
        "body of 4 GiB announced": (b"POST /v1/security/validate HTTP/1.1\r\nHost: x\r\nContent-Length: 4294967296\r\n\r\n{", 413),
    }
    seen = {}
    for name, (data, expected) in tries.items():
        status, answer = raw_exchange(data, timeout=15)
        seen[name] = status
        if expected == 0:  # idle: closed silently after idle_timeout, no answer to a request never made
            check(status == 0 and answer == b"", f"{name}: {status} {str(answer)[:160]}")
        else:
            check(status == expected and isinstance(answer, dict) and error_code(answer), f"{name}: {status} {str(answer)[:160]}")
    return seen


@case("slowloris")
def slowloris():
    def work():
        conns = [connect() for _ in range(30)]
        head = b"GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 40
        t = time.monotonic()
        closed = {}
        for i in range(len(head)):
            for n, s in enumerate(conns):
                if n in closed:
                    continue
                try:
                    s.sendall(head[i:i + 1])
                except OSError:
                    closed[n] = time.monotonic() - t
            if len(closed) == len(conns):
                break
            time.sleep(0.5)
        answers = []
        for n, s in enumerate(conns):
            status, _, body = read_response(s, timeout=5)
            answers.append(status)
            s.close()
        return {"connections": len(conns), "answers": answers, "seconds": round(time.monotonic() - t, 1)}
    r = as_nobody(work)
    check(r.get("answers") and all(a in (408, 0) for a in r["answers"]) and 408 in r["answers"], f"slowloris: {r}")
    check(r.get("seconds", 99) < 10, f"slowloris connections lived {r.get('seconds')} s (header_timeout is 2 s)")
    return {"answers": {str(a): r.get("answers", []).count(a) for a in set(r.get("answers", []))}, "seconds": r.get("seconds")}


@case("slow-body")
def slow_body():
    conns = []
    for _ in range(10):
        s = connect()
        s.sendall(b"POST /v1/security/validate HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{\"profile\":")
        conns.append(s)
    t = time.monotonic()
    answers = []
    for s in conns:
        status, _, body = read_response(s, timeout=10)
        answers.append(status)
        s.close()
    took = time.monotonic() - t
    check(all(a == 408 for a in answers), f"slow bodies: {answers}")
    return {"answers": answers, "seconds": round(took, 1)}


@case("connection-flood")
def connection_flood():
    def work():
        import resource
        resource.setrlimit(resource.RLIMIT_NOFILE, (8192, 8192))
        conns, refused_connect = [], 0
        for _ in range(3000):
            try:
                conns.append(connect())
            except OSError:
                refused_connect += 1
        time.sleep(0.5)
        answers = {}
        for s in conns:
            try:
                s.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
                status, _, _ = read_response(s, timeout=5)
            except OSError:
                status = 0
            answers[str(status)] = answers.get(str(status), 0) + 1
        held = time.monotonic()
        time.sleep(1)
        for s in conns:
            s.close()
        return {"opened": len(conns), "connectFailed": refused_connect, "answers": answers}
    # root opens past the users' cap too, into the reserve
    r = as_nobody(work)
    answers = r.get("answers", {})
    check(answers.get("200", 0) <= 32, f"a role-less caller got {answers.get('200')} connections served (per-user cap 32): {r}")
    check(answers.get("429", 0) > 0, f"no 429 too_many_connections for the flood: {r}")
    return r


@case("audit-flood")
def audit_flood():
    before = os.path.getsize(os.path.join(ARGS.audit_dir, "audit.db")) + wal_size()

    def work():
        sent, statuses = 0, {}
        t = time.monotonic()
        s = None
        while sent < 3000:
            if s is None:
                s = connect()
            try:
                s.sendall(b"GET /v1/security/audit/flooded HTTP/1.1\r\nHost: x\r\n\r\n")
                status, headers, _ = read_response(s, timeout=5)
            except OSError:
                status, headers = 0, {"connection": "close"}
            statuses[str(status)] = statuses.get(str(status), 0) + 1
            sent += 1
            if status == 0 or headers.get("connection") == "close":
                s.close()
                s = None
        long_id = 0
        for _ in range(50):
            st, _ = request("GET", "/v1/tools/" + "x" * 60000)
            long_id += st == 400
        return {"sent": sent, "statuses": statuses, "rate": round(sent / (time.monotonic() - t)), "longIdsRefused": long_id}
    r = as_nobody(work)
    time.sleep(12)  # past the denial window: the count is written
    events = audit("flooded", "&type=PermissionDenied")
    represented = sum(e["details"].get("repeated", 1) for e in events)
    anomalies = audit("flooded", "&type=AnomalousActivity")
    after = os.path.getsize(os.path.join(ARGS.audit_dir, "audit.db")) + wal_size()
    check(r.get("statuses", {}).get("403") == 3000, f"refusals: {r}")
    check(len(events) <= 3, f"{len(events)} PermissionDenied rows for 3000 refusals")
    check(represented == 3000, f"the rows stand for {represented} refusals, not 3000")
    check(len(anomalies) >= 1, "no AnomalousActivity for the burst")
    check(r.get("longIdsRefused") == 50, f"60,000-character ids: {r.get('longIdsRefused')} of 50 refused")
    return {"refusals": 3000, "perSecond": r.get("rate"), "rows": len(events), "anomalies": len(anomalies), "auditBytesAdded": after - before}


def wal_size():
    try:
        return os.path.getsize(os.path.join(ARGS.audit_dir, "audit.db-wal"))
    except OSError:
        return 0


def register(tool, toml, command):
    status, answer = request("POST", "/v1/tools", {"id": tool, "metadata": {"name": tool, "version": "1"}, "profile": toml, "command": command})
    check(status in (201, 409), f"registering {tool}: {status} {str(answer)[:300]}")


def mcp_post(sid, message, raw=None):
    return request("POST", f"/v1/sessions/{sid}/mcp", message, raw=raw, headers={"Accept": "application/json, text/event-stream"}, timeout=60)


def session_end(sid, tool):
    for _ in range(200):
        for e in audit(tool):
            if e["context"].get("invocationID") == sid and e["type"] in ("ToolCompleted", "ToolFailed"):
                return e
        time.sleep(0.1)
    return None


@case("mcp-framing")
def mcp_framing():
    script = os.path.join(ARGS.repo, "Tests/MCP/misbehaving_server.py")
    toml = ('extends = "mcp-base"\n[tool]\nid = "misbehaving"\nname = "m"\nversion = "1"\n'
            f'[permissions]\nfile_read = ["/usr/lib/python3.11/**", "{os.path.dirname(script)}/**"]\n')
    register("misbehaving", toml, ["/usr/bin/python3", script])
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "abuse", "version": "1"}}}
    out = {}
    # The client's side: a message with duplicate keys.
    status, started = request("POST", "/v1/tools/misbehaving/sessions", {})
    check(status == 201, f"session: {status} {started}")
    sid = started.get("id", "")
    status, answer = mcp_post(sid, init)
    check(status == 200, f"initialize: {status} {answer}")
    status, answer = mcp_post(sid, None, raw=b'{"jsonrpc":"2.0","id":2,"method":"ping","method":"tools/list"}')
    check(status == 400 and isinstance(answer, dict) and answer.get("error", {}).get("code") == -32600, f"duplicate keys: {status} {answer}")
    end = session_end(sid, "misbehaving")
    check(end is not None and end["type"] == "ToolFailed", f"the session after a client violation: {end}")
    v = [e for e in audit("misbehaving", "&type=SecurityViolation") if e["details"].get("session") == sid]
    check(len(v) == 1 and v[0]["details"].get("side") == "client", f"client violation events: {v}")
    out["client"] = v[0]["details"].get("message") if v else None
    # Not JSON at all: JSON-RPC's parse error, the session goes on.
    status, started = request("POST", "/v1/tools/misbehaving/sessions", {})
    sid = started.get("id", "")
    mcp_post(sid, init)
    status, answer = mcp_post(sid, None, raw=b"hello?")
    check(status == 400 and isinstance(answer, dict) and answer.get("error", {}).get("code") == -32700, f"not JSON: {status} {answer}")
    # The server's side: an ambiguous answer mid-call.
    status, answer = mcp_post(sid, {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "bad_frame", "arguments": {}}})
    check(status == 200 and isinstance(answer, dict) and answer.get("error", {}).get("data", {}).get("burrow") == "session_ended", f"bad_frame: {status} {answer}")
    end = session_end(sid, "misbehaving")
    check(end is not None and end["type"] == "ToolFailed", f"the session after a server violation: {end}")
    v = [e for e in audit("misbehaving", "&type=SecurityViolation") if e["details"].get("session") == sid]
    check(len(v) == 1 and v[0]["details"].get("side") == "server" and v[0]["details"].get("offset", 0) > 0, f"server violation events: {v}")
    out["server"] = v[0]["details"].get("message") if v else None
    return out


# ---------------------------------------------------------------- the session socket

SESSION_KINDS = {16: "violation", 17: "refused", 18: "failed", 19: "plan", 20: "finished"}


def session_path():
    return ARGS.socket[:-5] + "-session.sock" if ARGS.socket.endswith(".sock") else ARGS.socket + "-session"


def frame(kind, payload):
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return struct.pack(">IB", len(data), kind) + data


def session_exchange(data=b"", fds=(), timeout=10, then_close=False):
    """Sends data (descriptors with its first byte) on a fresh session connection;
    returns burrowd's frames until it closes: [(kind name, JSON)], or "timeout"."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(session_path())
    try:
        # burrowd may answer and close before reading it all (a refusal): read the answer anyway.
        try:
            if data:
                if fds:
                    socket.send_fds(s, [data], list(fds))
                else:
                    s.sendall(data)
            if then_close:
                s.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass
        s.settimeout(timeout)
        buf = b""
        while True:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                return "timeout"
            except ConnectionResetError:
                break
            if not chunk:
                break
            buf += chunk
        frames = []
        while len(buf) >= 5:
            n, kind = struct.unpack(">IB", buf[:5])
            frames.append((SESSION_KINDS.get(kind, kind), json.loads(buf[5:5 + n])))
            buf = buf[5 + n:]
        return frames
    finally:
        s.close()


def refused_with(frames, code, words, what):
    ok = isinstance(frames, list) and len(frames) == 1 and frames[0][0] == "refused" and frames[0][1].get("code") == code \
        and all(w in frames[0][1].get("message", "") for w in words)
    check(ok, f"session-socket {what}: {str(frames)[:300]}")
    return frames[0][1].get("message", "")[:80] if ok else str(frames)[:80]


@case("session-socket")
def session_socket():
    out = {}
    request = {"command": "dry-run", "profile": {"name": "minimal"}, "argv": ["/bin/true"], "workingDirectory": "/"}
    # A role-less caller (nobody is in the socket group, not a runner).
    r = as_nobody(lambda: {"frames": session_exchange(frame(1, request))})
    out["no-role"] = refused_with(r.get("frames"), "forbidden", ["no runner role"], "role-less caller")
    out["huge-frame"] = refused_with(session_exchange(struct.pack(">IB", 0xFFFFFFFF, 1)), "invalid_request", ["above"], "a 4 GiB frame")
    out["unknown-kind"] = refused_with(session_exchange(frame(99, {})), "invalid_request", ["unknown frame kind"], "an unknown kind")
    out["not-a-request"] = refused_with(session_exchange(frame(2, {"number": 15})), "invalid_request", ["first frame"], "a signal first")
    out["unknown-field"] = refused_with(session_exchange(frame(1, dict(request, extra=1))), "invalid_request", ["extra"], "an unknown field")
    out["bad-json"] = refused_with(session_exchange(frame(1, b"{\"command\": \"run\", \"command\": \"mcp\"}")), "invalid_request", ["not valid"], "duplicate keys")
    for name in ["../../etc/shadow", "/etc/shadow", "minimal.toml", ".hidden", ""]:
        out["name " + name] = refused_with(
            session_exchange(frame(1, dict(request, profile={"name": name}))), "invalid_request", ["profile name"], f"profile name {name!r}")
    # Descriptors: run without them, a dry-run with them, nine of them, descriptors on a signal frame.
    r0, w0 = os.pipe()
    try:
        run = dict(request, command="run")
        out["run-no-fds"] = refused_with(session_exchange(frame(1, run)), "invalid_request", ["passes 3 descriptors"], "run without stdio")
        out["dry-run-fds"] = refused_with(session_exchange(frame(1, request), fds=[r0, w0, w0]), "invalid_request", ["passes 0 descriptors"], "dry-run with stdio")
        out["nine-fds"] = refused_with(session_exchange(frame(1, run), fds=[w0] * 9), "invalid_request", ["descriptors"], "nine descriptors")
        out["fds-on-signal"] = refused_with(session_exchange(frame(2, {"number": 15}), fds=[w0]), "invalid_request", ["descriptors"], "descriptors on a signal")
    finally:
        os.close(r0)
        os.close(w0)
    # A truncated frame, then the end: nothing to answer; nothing held.
    t = session_exchange(struct.pack(">IB", 100, 1) + b"{", then_close=True)
    check(t == [] or (isinstance(t, list) and t[0][0] == "refused"), f"session-socket truncated: {t}")
    # Descriptors with a bad header, or sent in the middle of a frame: refused, closed (the case's descriptor count checks it).
    r1, w1 = os.pipe()
    try:
        out["fds-bad-header"] = refused_with(session_exchange(struct.pack(">IB", 0xFFFFFFFF, 1), fds=[w1] * 8), "invalid_request", ["above"], "descriptors with a bad header")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(session_path())
        whole = frame(1, dict(request, command="run"))
        s.sendall(whole[:3])
        time.sleep(0.1)
        socket.send_fds(s, [whole[3:]], [w1, w1, w1])
        s.settimeout(10)
        data = s.recv(65536)
        s.close()
        check(b"descriptors" in data, f"session-socket descriptors mid-frame: {data[:200]}")
    finally:
        os.close(r1)
        os.close(w1)
    # A request trickled a byte at a time: header_timeout bounds the whole of it, not each byte.
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(session_path())
    start = time.monotonic()
    answer = b""
    try:
        for b in frame(1, request):
            s.send(bytes([b]))
            time.sleep(0.3)
            if time.monotonic() - start > 8:
                break
    except OSError:
        pass
    s.settimeout(5)
    try:
        answer = s.recv(65536)
    except OSError:
        pass
    s.close()
    check(b"timed out" in answer and time.monotonic() - start < 6, f"session-socket trickled request: {time.monotonic() - start:.1f} s, {answer[:200]}")
    # Silence: refused once header_timeout (2 s) passes.
    start = time.monotonic()
    out["silent"] = refused_with(session_exchange(b"", timeout=10), "invalid_request", ["timed out"], "a silent client")
    check(time.monotonic() - start < 5, "a silent session client was held past header_timeout")
    # And a valid request still works.
    ok = session_exchange(frame(1, request))
    check(isinstance(ok, list) and ok and ok[-1][0] == "plan", f"session-socket: a valid dry-run after the abuse: {str(ok)[:200]}")
    # A flood from a role-less caller: each connection is answered and closed at once, none held.
    def flood():
        answers = {}
        for _ in range(200):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(session_path())
                s.settimeout(5)
                data = s.recv(65536)
                key = "forbidden" if b"forbidden" in data else "too_many_connections" if b"too_many_connections" in data else "other"
            except OSError:
                key = "connect-failed"
            finally:
                s.close()
            answers[key] = answers.get(key, 0) + 1
        return answers
    f = as_nobody(flood)
    check(f.get("forbidden", 0) + f.get("too_many_connections", 0) == 200, f"session-socket flood: {f}")
    out["flood"] = f
    return {"cases": len(out)}


@case("tls-abuse")
def tls_abuse():
    if not ARGS.https_port:
        return {"skipped": "no HTTPS listener"}
    seen = {}
    # Plain HTTP, random bytes and a TLS 1.2 ClientHello to the TLS port: closed, never answered in HTTP.
    hello12 = bytes.fromhex("160301002d010000290303") + os.urandom(32) + bytes.fromhex("000002c02f0100")
    for name, data in {"plain HTTP": b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n", "random bytes": os.urandom(4096), "TLS 1.2 hello": hello12}.items():
        s = tcp()
        s.sendall(data)
        took = closed_within(s, 5)
        s.close()
        seen[name] = took
        check(took is not None, f"{name}: the TLS port kept the connection open")
    # Stalled handshakes: silent and half-sent; each closed by header_timeout (2 s) and the TLS close (1 s).
    stalled = [tcp() for _ in range(30)]
    for n, s in enumerate(stalled):
        if n % 2:
            s.sendall(hello12[:20])
    times = [closed_within(s, 8) for s in stalled]
    for s in stalled:
        s.close()
    seen["stalled closed"] = sum(t is not None for t in times)
    check(all(t is not None and t < 4.5 for t in times), f"stalled TLS handshakes lived on: {times}")
    seen["stalled seconds"] = max(t if t is not None else 99 for t in times)
    # A handshake flood without a client certificate, 8 threads: every one refused.
    results = {"refused": 0, "accepted": 0}
    lock = threading.Lock()

    def flood():
        ctx = tls_context(cert=False)
        for _ in range(25):
            try:
                with ctx.wrap_socket(tcp(), server_hostname="127.0.0.1") as t:
                    t.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
                    got = t.recv(100)
                key = "accepted" if got.startswith(b"HTTP/1.1 200") else "refused"
            except (ssl.SSLError, OSError):
                key = "refused"
            with lock:
                results[key] += 1
    threads = [threading.Thread(target=flood) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seen["flood"] = results
    check(results["accepted"] == 0 and results["refused"] == 200, f"handshakes without a certificate: {results}")
    # Still serving a real client, and the refusals aggregated: a few rows, not two hundred.
    with tls_context().wrap_socket(tcp(), server_hostname="127.0.0.1") as t:
        t.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answer = b""
        while chunk := t.recv(65536):
            answer += chunk
    check(answer.startswith(b"HTTP/1.1 200") and b'"cert:client"' in answer, f"a client with a certificate after the abuse: {answer[:200]}")
    rows = [e for e in audit("burrowd", "&type=PermissionDenied") if e.get("details", {}).get("reason") == "tls_handshake_failed"]
    seen["audit rows"] = len(rows)
    check(0 < len(rows) <= 10, f"{len(rows)} tls_handshake_failed rows for the flood (aggregated per address and window)")
    return seen


def main():
    global ARGS
    p = argparse.ArgumentParser()
    p.add_argument("--socket", required=True)
    p.add_argument("--pid", required=True, type=int)
    p.add_argument("--audit-dir", required=True)
    p.add_argument("--repo", required=True)
    p.add_argument("--report")
    p.add_argument("--https-port", type=int, default=0)
    p.add_argument("--tls-dir")
    p.add_argument("cases", nargs="*")
    ARGS = p.parse_args()
    for name, fn in CASES:
        if not ARGS.cases or name in ARGS.cases:
            run_case(name, fn)
    if ARGS.report:
        with open(ARGS.report, "w") as f:
            json.dump(REPORT, f, indent=1)
    print(json.dumps({"failures": FAILURES}, indent=1))
    sys.exit(1 if FAILURES else 0)


if __name__ == "__main__":
    main()
