"""Where the shipped playbooks are."""

from __future__ import annotations

from pathlib import Path


def playbooks_dir() -> Path:
    """The shipped playbooks: `pollwatch/playbooks/` in an installed package, else the repository's `playbooks/`
    (a checkout, or an editable install of one)."""
    package = Path(__file__).resolve().parent.parent
    installed = package / "playbooks"
    return installed if installed.is_dir() else package.parent / "playbooks"


PLAYBOOKS_DIR = playbooks_dir()
