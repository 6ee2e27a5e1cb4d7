"""mcastkit benchmarks: ``python -m benchmarks [--quick]`` (``make bench`` runs it in a
fresh network namespace). Every ratio is against baselines measured in the same run.

Must not: be imported by mcastkit, or send anywhere but ``lo`` in its own namespace.
"""
