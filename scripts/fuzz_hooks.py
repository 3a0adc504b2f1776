"""schemathesis hooks for scripts/fuzz-api.sh.

`follow=true` (or `Accept: text/event-stream`) on GET /api/v1/events and GET /api/v1/runs/{id}/logs
turns the answer into a live Server-Sent Events stream that sends a comment every 15 s and ends only
when the client goes away, so a fuzzer's request would never end. The fuzzer is given the document
without the `follow` parameter and without the `text/event-stream` answers; the streams are tested by
the Swift suites (EventLogTests, the CLI's `run logs -f` and `events -f`).

`Last-Event-ID` (how a reconnecting stream resumes) is left out too: schemathesis treats the header
parameters an operation declares as a closed set and expects a request with any other header to be
refused, which no HTTP server does (clients and proxies add headers). Its values are checked by the
Swift suites (EventSystemTests resumes a stream with it) as `after` is by the fuzzer.

A recurring task's `schedule.cron` and `schedule.timeZone` are a grammar and the IANA database, which
a JSON schema cannot say: a string that fits the document is still refused with a 422 naming the
field and the position (RecurringTaskTests checks those answers). The fuzzer is given a choice of valid
expressions and zones instead, and the rule "runAt or schedule, not both" (said in the document's
text) as a `not` clause, so that what it sends is what the service accepts.

A step is a `script` or a built-in `command` with `args` checked against that command's parameter
schema (served at GET /api/v1/commands; CommandStepTests checks the 422 answers). The fuzzer is given
the two kinds as a `oneOf`: scripts without command fields, and commands that take no parameters.

A label selector (`target.selector` of a task, `selector` of the agents list) is a grammar too, whose
language no JSON schema says: a string that fits the document may be refused with a 422 naming the field
and the position, and a string outside any list of examples is often a valid selector (`AAA` selects the
agents that have the key), so neither a pattern nor an enum makes the fuzzer's negative cases right.
The fuzzer is given the document without selectors (no `selector` parameter, no `kind: selector`
target); TargetsAndRolloutTests and RolloutSystemTests check them, their 422s included.

A webhook's URL (and a task's `callbackUrl`) is called by the manager: the fuzzer may only name a loopback port where nothing
listens (the deliveries fail and are retried, which is what they do for any receiver that is down), never
a host on the network. A given `secret` must be canonical base64 of 24 to 64 bytes, which a pattern can
only approximate: the fuzzer is given valid secrets (WebhookTests checks the refusals).
"""

import schemathesis


@schemathesis.hook
def before_load_schema(context, raw_schema):
    for methods in raw_schema.get("paths", {}).values():
        for operation in methods.values():
            if not isinstance(operation, dict):
                continue
            parameters = operation.get("parameters")
            if isinstance(parameters, list):
                operation["parameters"] = [p for p in parameters if not (isinstance(p, dict) and p.get("name") == "follow")]
                operation["parameters"] = [p for p in operation["parameters"] if not _is_last_event_id(raw_schema, p)]
            for response in operation.get("responses", {}).values():
                if isinstance(response, dict) and isinstance(response.get("content"), dict):
                    response["content"].pop("text/event-stream", None)
    _restrict_schedules(raw_schema)
    _restrict_steps(raw_schema)
    _restrict_selectors(raw_schema)
    _restrict_webhooks(raw_schema)


def _is_last_event_id(raw_schema, parameter):
    """Whether `parameter` (inline or a `$ref` to components/parameters) is the Last-Event-ID header."""
    if isinstance(parameter, dict) and isinstance(parameter.get("$ref"), str):
        name = parameter["$ref"].rsplit("/", 1)[-1]
        parameter = raw_schema.get("components", {}).get("parameters", {}).get(name)
    return isinstance(parameter, dict) and parameter.get("in") == "header" and parameter.get("name", "").lower() == "last-event-id"


_CRON_EXAMPLES = ["* * * * *", "*/15 8-18 * * mon-fri", "0 3 * * *", "30 2 1,15 * *", "0 0 1 jan,jul sun"]
_ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Seoul"]


def _restrict_schedules(raw_schema):
    schemas = raw_schema.get("components", {}).get("schemas", {})
    recurrence = schemas.get("Recurrence", {}).get("properties", {})
    if "cron" in recurrence:
        recurrence["cron"] = {"type": "string", "enum": _CRON_EXAMPLES}
    if "timeZone" in recurrence:
        recurrence["timeZone"] = {"type": "string", "enum": _ZONES}
    request = schemas.get("TaskCreateRequest")
    if isinstance(request, dict):
        request["not"] = {
            "required": ["runAt", "schedule"],
            "properties": {"runAt": {"type": "integer"}, "schedule": {"type": "object"}},
        }


_COMMANDS_WITHOUT_PARAMETERS = ["agent.info", "agent.running-runs", "host.facts"]


def _restrict_steps(raw_schema):
    schemas = raw_schema.get("components", {}).get("schemas", {})
    step = schemas.get("Step")
    if not isinstance(step, dict) or "command" not in step.get("properties", {}):
        return
    properties = step["properties"]
    common = {name: value for name, value in properties.items() if name in ("name", "timeoutSeconds")}
    script_step = {
        "type": "object",
        "required": ["script"],
        "additionalProperties": False,
        "properties": dict(common, script=properties["script"]),
    }
    command_step = {
        "type": "object",
        "required": ["command"],
        "additionalProperties": False,
        "properties": dict(
            common,
            command={"type": "string", "enum": _COMMANDS_WITHOUT_PARAMETERS},
            args={"type": "object", "maxProperties": 0},
        ),
    }
    schemas["Step"] = {"oneOf": [script_step, command_step]}
def _restrict_selectors(raw_schema):
    schemas = raw_schema.get("components", {}).get("schemas", {})
    target = schemas.get("Target", {})
    kind = target.get("properties", {}).get("kind", {})
    if isinstance(kind.get("enum"), list):
        kind["enum"] = [value for value in kind["enum"] if value != "selector"]
    if isinstance(target.get("oneOf"), list):
        target["oneOf"] = [
            branch for branch in target["oneOf"]
            if not (isinstance(branch, dict) and branch.get("properties", {}).get("kind", {}).get("const") == "selector")
        ]
    for name in ("selector", "allZones"):
        if name in target.get("properties", {}):
            target["properties"][name] = {"const": None}
    agents = raw_schema.get("paths", {}).get("/api/v1/agents", {}).get("get", {})
    if isinstance(agents.get("parameters"), list):
        agents["parameters"] = [p for p in agents["parameters"] if not (isinstance(p, dict) and p.get("name") == "selector")]


_WEBHOOK_URLS = ["http://127.0.0.1:9/hook", "https://127.0.0.1:9/a?b=c"]
_WEBHOOK_SECRETS = ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_" + "A" * 43 + "="]


def _restrict_webhooks(raw_schema):
    schemas = raw_schema.get("components", {}).get("schemas", {})
    if "WebhookURL" in schemas:
        schemas["WebhookURL"] = {"type": "string", "enum": _WEBHOOK_URLS}
    request = schemas.get("WebhookCreateRequest", {}).get("properties", {})
    if "secret" in request:
        request["secret"] = {"type": ["string", "null"], "enum": _WEBHOOK_SECRETS + [None]}
    update = schemas.get("WebhookUpdateRequest", {}).get("properties", {})
    if "url" in update:
        update["url"] = {"type": ["string", "null"], "enum": _WEBHOOK_URLS + [None]}
    task = schemas.get("TaskCreateRequest", {}).get("properties", {})
    if "callbackUrl" in task:
        task["callbackUrl"] = {"type": ["string", "null"], "enum": _WEBHOOK_URLS + [None]}
