"""History on disk: one SQLite database, written by one thread."""
