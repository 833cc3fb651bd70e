"""Drives every operation of docs/openapi.yaml against a live burrowd with
the client openapi-python-client generated from it (the package named by
argv[2], importable from PYTHONPATH), over burrowd's Unix socket (argv[1]).
Every answer must parse as the model the description promises for its
status; any other status raises (raise_on_unexpected_status). Prints one
line per operation; exits 1 at the first answer that is not what the
description says. The caller is root: admin, auditor and reporter."""
import datetime
import importlib
import sys
import time

import httpx

socket, package = sys.argv[1], sys.argv[2]
client_module = importlib.import_module(package)
importlib.import_module(package + ".types")
api = importlib.import_module(package + ".api")
models = importlib.import_module(package + ".models")
from_api = lambda group, name: importlib.import_module(f"{package}.api.{group}.{name}")

client = client_module.Client(
    base_url="http://burrowd", raise_on_unexpected_status=True, httpx_args={"transport": httpx.HTTPTransport(uds=socket)}
)
checked = []


def check(operation, condition, what):
    if not condition:
        print(f"FAIL {operation}: {what}", file=sys.stderr)
        sys.exit(1)
    checked.append(operation)
    print(f"ok   {operation}: {what}")


def answer(operation, response, status, model):
    parsed = response.parsed
    check(
        operation,
        response.status_code == status and isinstance(parsed, model),
        f"{response.status_code} {type(parsed).__name__} (expected {status} {model.__name__})",
    )
    return parsed


def tool(id, version, dependencies=(), categories=("contract",), capabilities=None, health=None):
    body = {
        "id": id,
        "metadata": {
            "name": f"{id} (contract test)",
            "version": version,
            "description": f"{id} for the OpenAPI contract test",
            "author": "burrow tests",
            "categories": list(categories),
            "documentation": "https://example.invalid/docs",
            "dependencies": [{"id": d, "version_requirement": r} for d, r in dependencies],
        },
        "security": {
            "permissions": [{"Execute": ["true"]}, {"Environment": ["LANG"]}],
            "resource_limits": {"max_cpu_time": {"secs": 5, "nanos": 0}, "max_memory": 67108864},
            "sandbox_level": "Container",
        },
        "command": ["true"],
        "rate_limits": {"requests_per_minute": 30, "max_concurrent": 2},
    }
    if capabilities:
        body["capabilities"] = {"tools": capabilities}
    if health:
        body["health"] = health
    return models.ToolRegistration.from_dict(body)


health = from_api("health", "health")
register_tool = from_api("tools", "register_tool")
list_tools = from_api("tools", "list_tools")
get_tool = from_api("tools", "get_tool")
update_tool = from_api("tools", "update_tool")
delete_tool = from_api("tools", "delete_tool")
validate_security = from_api("security", "validate_security")
list_policies = from_api("security", "list_policies")
submit_audit_event = from_api("security", "submit_audit_event")
get_audit_trail = from_api("security", "get_audit_trail")
search_tools = from_api("discovery", "search_tools")
list_categories = from_api("discovery", "list_categories")
get_recommendations = from_api("discovery", "get_recommendations")
list_nodes = from_api("security", "list_nodes")

h = answer("health", health.sync_detailed(client=client), 200, models.HealthResponse)
check("health", h.caller.uid == 0, f"the caller is uid {h.caller.uid}")

health_check = {"interval_seconds": 60, "timeout_seconds": 5, "command": ["true"]}
base = answer("register_tool", register_tool.sync_detailed(client=client, body=tool("contract-base", "1.2.0", health=health_check)), 201, models.RegisteredTool)
check("register_tool", base.status == models.ToolStatus.ACTIVE and base.metadata.version == "1.2.0", f"status {base.status}")
check("register_tool", base.health.interval_seconds == 60 and base.health.unhealthy_threshold == 3, "health settings, defaults filled in")
again = answer("register_tool", register_tool.sync_detailed(client=client, body=tool("contract-base", "1.2.0")), 409, models.Error)
check("register_tool", again.error.code == "version_exists", f"a second registration: {again.error.code}")
capability = {
    "name": "convert_time",
    "description": "converts a time between time zones",
    "inputSchema": {"type": "object", "properties": {"source_timezone": {"type": "string"}, "time": {"type": "string"}}},
}
app = answer(
    "register_tool",
    register_tool.sync_detailed(client=client, body=tool("contract-app", "1", [("contract-base", ">=1.2 <2")], capabilities=[capability])),
    201,
    models.RegisteredTool,
)
missing = answer(
    "register_tool", register_tool.sync_detailed(client=client, body=tool("contract-orphan", "1", [("nowhere", "*")])), 422, models.Error
)
check("register_tool", missing.error.code == "validation_failed" and missing.validation is not None, "a missing dependency is a validation finding")

# Its first health check runs at once: the answer then carries what it found.
for _ in range(100):
    detail = answer("get_tool", get_tool.sync_detailed("contract-base", client=client, window="1d"), 200, models.ToolDetail)
    if not isinstance(detail.tool.health_state, client_module.types.Unset):
        break
    time.sleep(0.1)
state = detail.tool.health_state
check("get_tool", getattr(state, "status", None) == "active" and state.version == "1.2.0", f"health_state {state}")
check("get_tool", [d.id for d in detail.dependents] == ["contract-app"], f"dependents {[d.id for d in detail.dependents]}")
check("get_tool", detail.statistics is not None and detail.statistics.invocations == 0, "an admin reads its statistics")
gone = answer("get_tool", get_tool.sync_detailed("contract-none", client=client), 404, models.Error)
check("get_tool", gone.error.code == "not_found", gone.error.code)

# An answer sent back as an update, one field changed.
body = models.ToolRegistration.from_dict(detail.tool.to_dict())
body.status = models.ToolStatus.DEPRECATED
updated = answer("update_tool", update_tool.sync_detailed("contract-base", client=client, body=body), 200, models.RegisteredTool)
check("update_tool", updated.status == models.ToolStatus.DEPRECATED, f"status {updated.status}")

listed = answer("list_tools", list_tools.sync_detailed(client=client, status=models.ToolStatus.DEPRECATED), 200, list)
check("list_tools", [t.id for t in listed] == ["contract-base"], f"deprecated: {[t.id for t in listed]}")
everything = answer("list_tools", list_tools.sync_detailed(client=client, category="contract"), 200, list)
check("list_tools", sorted(t.id for t in everything) == ["contract-app", "contract-base"], f"category contract: {[t.id for t in everything]}")

found = answer("search_tools", search_tools.sync_detailed(client=client, q="contract base"), 200, list)
check("search_tools", found and isinstance(found[0], models.RegisteredTool) and found[0].id == "contract-base", f"q: {[t.id for t in found]}")
check("search_tools", found[0].statistics.invocations == 0, "an admin's search answer carries statistics")
# A search answer sent back as an update is a valid body (what burrowd added is ignored).
echoed = answer("update_tool", update_tool.sync_detailed("contract-base", client=client, body=models.ToolRegistration.from_dict(found[0].to_dict())), 200, models.RegisteredTool)
check("update_tool", echoed.status == models.ToolStatus.DEPRECATED, f"status {echoed.status}")
ranked = answer("search_tools", search_tools.sync_detailed(client=client, capability="convert time", input_="source_timezone:string"), 200, list)
check(
    "search_tools",
    ranked and isinstance(ranked[0], models.RankedTool) and ranked[0].tool == "contract-app" and ranked[0].reasons,
    f"capability: {[(r.tool, r.score) for r in ranked]}",
)

report = answer(
    "validate_security",
    validate_security.sync_detailed(
        client=client, body=models.ValidationRequest.from_dict({"security": {"permissions": [{"Execute": ["true"]}]}, "command": ["true"]})
    ),
    200,
    models.ValidationReport,
)
check("validate_security", report.valid, f"valid {report.valid}: {[f.message for f in report.findings]}")

answer("list_policies", list_policies.sync_detailed(client=client), 200, models.HostPolicy)

event = answer(
    "submit_audit_event",
    submit_audit_event.sync_detailed(
        client=client,
        body=models.AuditEventReport.from_dict(
            {
                "tool_id": "contract-app",
                "event_type": "AnomalousActivity",
                "details": {"what": "the contract test's report"},
                "timestamp": "2026-01-01T00:00:00Z",
                "security_context": {"client": "contract"},
            }
        ),
    ),
    201,
    models.AuditEvent,
)
check("submit_audit_event", event.origin == "reported:root" and event.event_type.value == "AnomalousActivity" and event.tool_id == "contract-app", f"{event}")

trail = answer(
    "get_audit_trail",
    get_audit_trail.sync_detailed(
        "contract-app",
        client=client,
        type_=[models.AuditEventType.TOOLREGISTERED, models.AuditEventType.ANOMALOUSACTIVITY],
        since=datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc),
        limit=10,
    ),
    200,
    list,
)
check("get_audit_trail", [e.event_type.value for e in trail] == ["ToolRegistered", "AnomalousActivity"], f"{[e.event_type.value for e in trail]}")
check("get_audit_trail", all(e.tool_id == "contract-app" and e.security_context.principal for e in trail), f"{[(e.tool_id, e.security_context) for e in trail]}")

categories = answer("list_categories", list_categories.sync_detailed(client=client), 200, list)
check("list_categories", any(c.category == "contract" and c.tools == 2 for c in categories), f"{[(c.category, c.tools) for c in categories]}")

suggested = answer("get_recommendations", get_recommendations.sync_detailed(client=client, context="contract", tool="contract-base"), 200, list)
check("get_recommendations", [r.tool for r in suggested] == ["contract-app"], f"{[(r.tool, r.reasons) for r in suggested]}")
vague = answer("get_recommendations", get_recommendations.sync_detailed(client=client), 400, models.Error)
check("get_recommendations", vague.error.code == "invalid_parameter", vague.error.code)

# A burrowd in no fleet (no [audit] central_url): its nodes and its central trail are a 404, said so.
alone = answer("list_nodes", list_nodes.sync_detailed(client=client), 404, models.Error)
check("list_nodes", alone.error.code == "no_central_copy", alone.error.code)

refused = answer("delete_tool", delete_tool.sync_detailed("contract-base", client=client), 409, models.Error)
check("delete_tool", refused.error.code == "has_dependents", refused.error.code)
removed = answer("delete_tool", delete_tool.sync_detailed("contract-app", client=client), 200, models.RemovedTool)
check("delete_tool", removed.removed == ["1"], f"{removed.removed}")
removed = answer("delete_tool", delete_tool.sync_detailed("contract-base", client=client), 200, models.RemovedTool)
check("delete_tool", removed.id == "contract-base", removed.id)

operations = sorted(set(checked))
print(f"contract: {len(operations)} operations, {len(checked)} checks passed: {', '.join(operations)}")
