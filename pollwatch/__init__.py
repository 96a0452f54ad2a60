"""pollwatch: catch, explain and report election internet shutdowns and platform blocks.

The domain core: models, playbooks, sources, baselines, detectors, classification, attribution,
alert rendering, the store and the audit log. It never imports Prefect; `tasks/` and `flows/`
wrap it for orchestration.
"""

__version__ = "0.1.0"
