"""Sources: where log lines come from (files, compressed archives, stdin, followed files, journald)."""
