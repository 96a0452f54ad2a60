"""The `pollwatch` command line (entry point `pollwatch.cli:main`), one module per command group.

`main` holds the root app; `common` what the command modules share. See pollwatch/cli/main.py.
"""

from pollwatch.cli.main import app, main

__all__ = ["app", "main"]
