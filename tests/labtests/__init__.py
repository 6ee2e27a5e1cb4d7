"""Lab tier: the 7-namespace lab with two multicast routers (tests/lab/topology.py)."""
