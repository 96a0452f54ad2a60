"""Settings from the environment (prefix POLLWATCH_) and an optional `.env` file.

Secrets are typed `SecretStr` so they never print, and are registered with `pollwatch.redact` as
they are read, so that a server echoing one has it scrubbed; flows may also read them from
Prefect Secret blocks (see `tasks/secrets.py`), which take precedence.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from pollwatch import redact


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="POLLWATCH_", env_file=".env", extra="ignore")

    home: Path = Field(default=Path.home() / ".pollwatch", description="where the embedded store lives")
    database_url: str | None = Field(default=None, description="SQLAlchemy URL; default SQLite in `home`")
    replay_database_url: str | None = Field(
        default=None,
        description="the replay store (replays, simulations, the demo); "
        "default beside the live one (pollwatch.store.replay_database_url)",
    )
    slack_bot_token: SecretStr | None = None
    slack_webhook_url: SecretStr | None = None
    slack_base_url: str | None = None
    slack_app_token: SecretStr | None = None  # xapp-…: Socket Mode (Slack actions without a public endpoint)
    slack_signing_secret: SecretStr | None = None  # checks the signature of Slack's requests to an HTTP request URL
    radar_api_token: SecretStr | None = None
    contact_url: str | None = Field(
        default=None,
        description="where observatories can reach this deployment's operators "
        "(a web page or mailto:), sent in every request's User-Agent",
    )

    @model_validator(mode="after")
    def _register_secrets(self) -> "Settings":
        redact.register(self.slack_bot_token, self.slack_webhook_url, self.radar_api_token)
        return self

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        self.home.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{self.home / 'pollwatch.sqlite'}"


def get_settings() -> Settings:
    """Read the settings now (cheap; the environment may change between calls in tests)."""
    return Settings()


def real_data_dir() -> Path | None:
    """The real outage data for calibration and evaluation: `$POLLWATCH_REAL_DATA` (None when it is not a folder),
    else the first `shared/data/real` beside the repository, its worktree folder, or one of their parents."""
    env = os.environ.get("POLLWATCH_REAL_DATA")
    if env:
        return Path(env) if Path(env).is_dir() else None
    for parent in Path(__file__).resolve().parents[1:]:
        cand = parent / "shared" / "data" / "real"
        if cand.is_dir():
            return cand
    return None
