"""`scs cases ...`, `scs webhooks ...` and `scs keys ...`: the router's HTTP API for operators
at a terminal.

Every command is one call to the router's API (`--router-url`, `$SCS_ROUTER_URL`) with a key
(`--key`, `$SCS_ADMIN_API_KEY`: the bootstrap key or an API key of the scope the call needs);
answers are printed as JSON (tables for lists), and an API problem (4xx) is printed as its
detail with exit status 1.
"""

from __future__ import annotations

from typing import Annotated, Any

import httpx
import orjson
import typer

RouterUrl = Annotated[
    str, typer.Option("--router-url", envvar="SCS_ROUTER_URL", help="The router's base URL")
]
AdminKey = Annotated[
    str,
    typer.Option(
        "--key", envvar="SCS_ADMIN_API_KEY", help="The bootstrap key or an API key (scs_...)"
    ),
]
DEFAULT_URL = "http://127.0.0.1:8003"

cases_app = typer.Typer(help="Cases: list, show, act (assign, note, reply, resolve...).")
webhooks_app = typer.Typer(help="Webhook endpoints: list, delivery log, redeliver, rotate...")
keys_app = typer.Typer(help="API keys: create, list, rotate, revoke (tokens are shown once).")


def call(url: str, key: str, method: str, path: str, **kwargs: Any) -> Any:
    try:
        response = httpx.request(
            method,
            url.rstrip("/") + path,
            headers={"Authorization": f"Bearer {key}"},
            timeout=30,
            **kwargs,
        )
    except httpx.HTTPError as error:
        typer.echo(f"error: router at {url}: {error}", err=True)
        raise typer.Exit(1) from None
    if response.status_code >= 400:
        try:
            detail = response.json().get("detail", response.text)
        except ValueError:
            detail = response.text
        typer.echo(f"error: {response.status_code}: {detail}", err=True)
        raise typer.Exit(1)
    return response.json() if response.content else None


def show(value: Any) -> None:
    typer.echo(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode())


@cases_app.command("list")
def list_cases(
    url: RouterUrl = DEFAULT_URL,
    key: AdminKey = "",
    queue: Annotated[str | None, typer.Option()] = None,
    status: Annotated[str | None, typer.Option()] = None,
    priority: Annotated[str | None, typer.Option()] = None,
    sla_state: Annotated[str | None, typer.Option("--sla-state")] = None,
    limit: Annotated[int, typer.Option(min=1, max=200)] = 50,
) -> None:
    """The latest cases, one line each (most recently changed first)."""
    params = {
        name: value
        for name, value in (
            ("queue", queue),
            ("status", status),
            ("priority", priority),
            ("sla_state", sla_state),
        )
        if value is not None
    }
    page = call(url, key, "GET", "/v1/cases", params={**params, "limit": limit})
    for item in page["items"]:
        case = item["case"]
        typer.echo(
            f"{case['case_id']}  {case['priority']}  {case['queue']:<20} {case['status']:<10} "
            f"{item['sla_state']:<9} due {case['first_response_due_at']}  "
            f"{case['conversation_key']}"
        )


@cases_app.command("show")
def show_case(case_id: str, url: RouterUrl = DEFAULT_URL, key: AdminKey = "") -> None:
    """One case: conversation, routing traces, clocks, history (JSON)."""
    show(call(url, key, "GET", f"/v1/cases/{case_id}"))


@cases_app.command("act")
def act(
    case_id: str,
    action: Annotated[
        str, typer.Argument(help="assign, note, priority, escalate, reply, merge, link, ...")
    ],
    url: RouterUrl = DEFAULT_URL,
    key: AdminKey = "",
    actor: Annotated[str, typer.Option()] = "operator",
    text: Annotated[str | None, typer.Option()] = None,
    assignee: Annotated[str | None, typer.Option()] = None,
    priority: Annotated[str | None, typer.Option()] = None,
    target: Annotated[str | None, typer.Option()] = None,
    other: Annotated[str | None, typer.Option(help="merge: the case to absorb")] = None,
    conversation_id: Annotated[
        str | None, typer.Option(help="link: the private thread on the same platform")
    ] = None,
) -> None:
    """Act on a case through the router's decider; prints the case after it."""
    body = {
        name: value
        for name, value in (
            ("action", action),
            ("actor", actor),
            ("text", text),
            ("assignee", assignee),
            ("priority", priority),
            ("target", target),
            ("other", other),
            ("conversation_id", conversation_id),
        )
        if value is not None
    }
    show(call(url, key, "POST", f"/v1/cases/{case_id}/actions", json=body))


@webhooks_app.command("list")
def list_endpoints(url: RouterUrl = DEFAULT_URL, key: AdminKey = "") -> None:
    for endpoint in call(url, key, "GET", "/v1/webhook-endpoints"):
        state = "enabled" if endpoint["enabled"] else "disabled"
        typer.echo(
            f"{endpoint['id']}  {state:<8} {endpoint['url']}  {','.join(endpoint['events'])}"
        )


@webhooks_app.command("deliveries")
def deliveries(
    endpoint_id: str,
    url: RouterUrl = DEFAULT_URL,
    key: AdminKey = "",
    status: Annotated[str | None, typer.Option()] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 20,
) -> None:
    """The endpoint's latest deliveries with every attempt (JSON)."""
    params: dict[str, Any] = {"limit": limit} | ({"status": status} if status else {})
    show(call(url, key, "GET", f"/v1/webhook-endpoints/{endpoint_id}/deliveries", params=params))


@webhooks_app.command("redeliver")
def redeliver(delivery_id: str, url: RouterUrl = DEFAULT_URL, key: AdminKey = "") -> None:
    show(call(url, key, "POST", f"/v1/webhook-deliveries/{delivery_id}/redeliver"))


@webhooks_app.command("replay")
def replay(
    endpoint_id: str,
    since: Annotated[str, typer.Option(help="ISO 8601 time")],
    url: RouterUrl = DEFAULT_URL,
    key: AdminKey = "",
) -> None:
    """Deliver again everything made for the endpoint since a time."""
    path = f"/v1/webhook-endpoints/{endpoint_id}/redeliver"
    show(call(url, key, "POST", path, params={"since": since}))


@webhooks_app.command("rotate")
def rotate(
    endpoint_id: str,
    url: RouterUrl = DEFAULT_URL,
    key: AdminKey = "",
    overlap_hours: Annotated[float, typer.Option(min=0, max=168)] = 24,
) -> None:
    """A new signing secret (printed once); the old one signs too until the overlap ends."""
    path = f"/v1/webhook-endpoints/{endpoint_id}/rotate-secret"
    show(call(url, key, "POST", path, json={"overlap_hours": overlap_hours}))


@webhooks_app.command("test")
def test_fire(endpoint_id: str, url: RouterUrl = DEFAULT_URL, key: AdminKey = "") -> None:
    show(call(url, key, "POST", f"/v1/webhook-endpoints/{endpoint_id}/test"))


@webhooks_app.command("enable")
def enable(endpoint_id: str, url: RouterUrl = DEFAULT_URL, key: AdminKey = "") -> None:
    show(call(url, key, "PATCH", f"/v1/webhook-endpoints/{endpoint_id}", json={"enabled": True}))


@webhooks_app.command("disable")
def disable(endpoint_id: str, url: RouterUrl = DEFAULT_URL, key: AdminKey = "") -> None:
    path = f"/v1/webhook-endpoints/{endpoint_id}"
    show(call(url, key, "PATCH", path, json={"enabled": False}))


@webhooks_app.command("delete")
def delete(endpoint_id: str, url: RouterUrl = DEFAULT_URL, key: AdminKey = "") -> None:
    call(url, key, "DELETE", f"/v1/webhook-endpoints/{endpoint_id}")
    typer.echo(f"deleted {endpoint_id}")


# -- API keys ---------------------------------------------------------------------------------


@keys_app.command("create")
def create_key(
    name: str,
    scope: Annotated[str, typer.Option(help="read, act or admin (each implies the ones before)")],
    url: RouterUrl = DEFAULT_URL,
    key: AdminKey = "",
    queue: Annotated[
        list[str] | None, typer.Option(help="Only cases of this queue (repeat for more)")
    ] = None,
    tenant: Annotated[str | None, typer.Option(help="Another tenant (bootstrap key only)")] = None,
) -> None:
    """A new API key; its token is printed now and never again."""
    body: dict[str, Any] = {"name": name, "scope": scope}
    if queue:
        body["queues"] = queue
    if tenant:
        body["tenant"] = tenant
    show(call(url, key, "POST", "/v1/api-keys", json=body))


@keys_app.command("list")
def list_keys(
    url: RouterUrl = DEFAULT_URL,
    key: AdminKey = "",
    tenant: Annotated[str | None, typer.Option(help="Bootstrap key: default every tenant")] = None,
) -> None:
    """The keys (never their tokens), one line each."""
    params = {"tenant": tenant} if tenant else {}
    for found in call(url, key, "GET", "/v1/api-keys", params=params):
        state = "revoked" if found["revoked_at"] else "active"
        queues = ",".join(found["queues"] or ["*"])
        typer.echo(
            f"{found['id']}  {state:<7} {found['tenant']:<12} {found['scope']:<5} "
            f"{found['name']:<24} queues {queues}  last used {found['last_used_at'] or 'never'}"
        )


@keys_app.command("rotate")
def rotate_key(
    key_id: str,
    url: RouterUrl = DEFAULT_URL,
    key: AdminKey = "",
    overlap_seconds: Annotated[float, typer.Option(min=0, max=3600)] = 0,
) -> None:
    """A new token (printed once); the old one stops now, or after the overlap."""
    path = f"/v1/api-keys/{key_id}/rotate"
    show(call(url, key, "POST", path, json={"overlap_seconds": overlap_seconds}))


@keys_app.command("revoke")
def revoke_key(key_id: str, url: RouterUrl = DEFAULT_URL, key: AdminKey = "") -> None:
    """Refuse the key from now on (kept, revoked, in the listing and the audit log)."""
    call(url, key, "DELETE", f"/v1/api-keys/{key_id}")
    typer.echo(f"revoked {key_id}")
