"""A receiver's answer is read up to a small cap and no further, however large it is."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx

from services.router.webhooks import RESPONSE_BODY_CAP, read_capped

CHUNK = 65_536


class EndlessBody(httpx.AsyncByteStream):
    """64 MiB offered in 64 KiB chunks; counts how many were taken."""

    def __init__(self) -> None:
        self.chunks_read = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for _ in range(1024):
            self.chunks_read += 1
            yield b"x" * CHUNK


async def test_a_huge_response_is_read_only_up_to_the_cap() -> None:
    body = EndlessBody()
    transport = httpx.MockTransport(lambda request: httpx.Response(200, stream=body))
    async with (
        httpx.AsyncClient(transport=transport) as client,
        client.stream("POST", "https://hooks.example.com/x") as response,
    ):
        read = await read_capped(response, RESPONSE_BODY_CAP)
    assert len(read) <= RESPONSE_BODY_CAP
    assert body.chunks_read == 1
