"""Real HTTP fakes of the external APIs pollwatch talks to (127.0.0.1, port 0)."""
