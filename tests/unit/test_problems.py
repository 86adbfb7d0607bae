"""The shared problem handlers: a body nested past the JSON parser's limit is a 422, not a 500
or FastAPI's generic 400, on every service that installs them."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel

from shared.http import BodySizeLimit, authenticated_route
from shared.problems import TOO_DEEP_DETAIL, install_problem_handlers


class Body(BaseModel):
    name: str


def test_a_body_nested_past_the_parser_limit_is_422_naming_the_body() -> None:
    app = FastAPI()
    install_problem_handlers(app)

    @app.post("/things")
    async def things(body: Body) -> dict[str, str]:
        return {"name": body.name}

    client = TestClient(app)
    response = client.post(
        "/things",
        content=b"[" * 100_000 + b"]" * 100_000,
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"] == [{"field": "body", "message": TOO_DEEP_DETAIL}]
    assert client.post("/things", json={"name": "ok"}).json() == {"name": "ok"}


def test_a_chunked_body_over_the_limit_is_413_on_authenticated_routes() -> None:
    """No Content-Length to refuse early: the limit trips while the route reads the body, after
    the token check, and must still be a 413 (FastAPI alone makes it a 400)."""
    router = APIRouter(route_class=authenticated_route(lambda service: ["a-token"], "test"))

    @router.post("/things")
    async def things(body: Body) -> dict[str, str]:
        return {"name": body.name}

    app = FastAPI()
    app.state.service = None
    app.add_middleware(BodySizeLimit, max_bytes=1024)
    install_problem_handlers(app)
    app.include_router(router)
    client = TestClient(app)
    headers = {"authorization": "Bearer a-token", "content-type": "application/json"}

    def chunks() -> Iterator[bytes]:
        yield b'{"name": "'
        for _ in range(64):
            yield b"x" * 512
        yield b'"}'

    response = client.post("/things", content=chunks(), headers=headers)
    assert response.status_code == 413, response.text
    assert response.headers["content-type"] == "application/problem+json"
    refused = client.post("/things", content=chunks(), headers={"content-type": "application/json"})
    assert refused.status_code == 401
    assert client.post("/things", json={"name": "ok"}, headers=headers).status_code == 200
