"""Secrets for tasks: a Prefect Secret block first, then pollwatch's settings (the environment).

Values come back typed as SecretStr, so they never print in logs, reprs or errors, and are
registered with `pollwatch.redact`, so that a server echoing one has it scrubbed.
"""

from __future__ import annotations

from pydantic import SecretStr

from pollwatch import redact


def secret_block(name: str) -> SecretStr | None:
    """The value of the Prefect Secret block `name`, or None when there is no such block (or no API to ask)."""
    from prefect.blocks.system import Secret

    try:
        value = Secret.load(name, _sync=True).get()  # type: ignore[call-arg]
    except Exception:  # missing block, no server: the caller falls back to the environment
        return None
    if not value:
        return None
    redact.register(str(value))
    return SecretStr(str(value))
