from __future__ import annotations

import pytest
from pydantic import SecretStr

from services.ingest.api import require_api_token
from services.ingest.config import IngestSettings
from shared.problems import Problem


async def test_ingest_token_is_optional_but_enforced_when_set() -> None:
    open_settings = IngestSettings()
    await require_api_token(open_settings, None)
    guarded = open_settings.model_copy(update={"api_token": SecretStr("t0ken-t0ken")})
    await require_api_token(guarded, "Bearer t0ken-t0ken")
    for header in (None, "Bearer wrong", "Basic t0ken-t0ken", "t0ken-t0ken"):
        with pytest.raises(Problem) as refused:
            await require_api_token(guarded, header)
        assert refused.value.status == 401


# The router's admin key is checked before the body: tests/unit/router/test_api.py.
