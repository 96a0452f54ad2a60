"""Which packages the distribution holds (the rest of the metadata is in pyproject.toml).

The repository keeps Prefect's layout at its top level (`flows/`, `tasks/`, `playbooks/`: Prefect deploys
from the repository), but an installed pollwatch holds them inside its own namespace, as `pollwatch.flows`,
`pollwatch.tasks` and the data folder `pollwatch/playbooks/`, so that nothing with a generic name lands in
site-packages. pyproject.toml cannot say "every pollwatch subpackage, plus these mapped folders", hence this file.
"""

from setuptools import find_packages, setup

setup(
    packages=[
        *find_packages(include=["pollwatch", "pollwatch.*"]),
        "pollwatch.flows",
        "pollwatch.tasks",
        "pollwatch.playbooks",  # data only (no __init__.py): pollwatch.playbook.playbooks_dir() finds it
    ],
    package_dir={"pollwatch.flows": "flows", "pollwatch.tasks": "tasks", "pollwatch.playbooks": "playbooks"},
)
