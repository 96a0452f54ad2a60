"""pollwatch: catch, explain and report election internet shutdowns and platform blocks.

The domain core: models, playbooks, sources, baselines, detectors, classification, attribution,
alert rendering, the store and the audit log. It never imports Prefect; `tasks/` and `flows/`
wrap it for orchestration.

An installed pollwatch holds them as `pollwatch.tasks` and `pollwatch.flows` (setup.py), so nothing
with a generic name lands in site-packages. A checkout keeps them at the repository's top level, where
Prefect deploys from: there the two names resolve to `<repository>/tasks` and `<repository>/flows`,
whichever checkout this package was imported from (a second worktree's own flows, not the editable
install's).
"""

from pathlib import Path as _Path

__version__ = "0.1.0"

_checkout = _Path(__file__).resolve().parent.parent
if not (_Path(__file__).resolve().parent / "flows").is_dir() and (_checkout / "flows" / "__init__.py").is_file():
    __path__.append(str(_checkout))  # pollwatch.flows -> <checkout>/flows
