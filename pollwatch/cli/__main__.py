"""`python -m pollwatch.cli ...`: the same as the `pollwatch` command."""

from pollwatch.cli.main import main

main()
