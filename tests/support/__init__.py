"""Unit tier: pure-Python tests of the mcastkit core (no namespaces, no network I/O)."""
