"""`python -m pollwatch ...`: the same as the `pollwatch` command (and `python -m pollwatch.cli`)."""

from pollwatch.cli.main import main

main()
