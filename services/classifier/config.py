from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class ClassifierSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SCS_CLASSIFIER_")

    port: int = Field(default=8002, ge=1, le=65535)
    # A model trained with `scs classifier train`; the shipped rules and lexicons otherwise.
    model_path: Path | None = None
    # Extra YAML lexicons (a brand's own vocabulary), merged over the shipped ones.
    lexicon_dir: Path | None = None
    # Similar negative mentions are counted over this trailing window (crisis velocity).
    velocity_window_seconds: int = Field(default=600, ge=30, le=86_400)
    # Bearer tokens for POST /v1/classify: the admin key or the classifier's own token; with
    # neither set the endpoint refuses everyone (it exposes the model to anyone who can reach it).
    admin_api_key: SecretStr | None = Field(
        default=None, min_length=16, validation_alias="SCS_ADMIN_API_KEY"
    )
    api_token: SecretStr | None = Field(default=None, min_length=16)
