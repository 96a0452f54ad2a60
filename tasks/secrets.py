"""Secrets for tasks: a Prefect Secret block first, then pollwatch's settings (the environment).

Values come back typed as SecretStr, so they never print in logs, reprs or errors.
"""

from __future__ import annotations

from pydantic import SecretStr


def secret_block(name: str) -> SecretStr | None:
    """The value of the Prefect Secret block `name`, or None when there is no such block (or no API to ask)."""
    from prefect.blocks.system import Secret

    try:
        value = Secret.load(name, _sync=True).get()  # type: ignore[call-arg]
    except Exception:  # missing block, no server: the caller falls back to the environment
        return None
    return SecretStr(str(value)) if value else None
