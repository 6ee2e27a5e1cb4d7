"""The test infrastructure, in one package: nothing here is a test.

Owns: the namespace fixtures and tier markers (``fixtures``), named namespaces
(``netns``), the lab and veth topologies (``topology``, ``mroute``, ``sniff``), reading
the kernel's multicast state (``kernelstate``), reference struct layouts
(``structs_ref``), the one table of lab addresses and groups (``addrs``), helpers per
area (``kernel``, ``batch``, ``backends``, ``spoof``, ``loops``, ``compat``, ``cli``,
``peers``, ``impair``, ``relay_topo``, ``relay_fixtures``, ``site``, ``packaging``) and
the session plugins (``soak``, ``hypothesis_profiles``).
Must not: hold tests, or name an address outside the ranges of ``addrs``. conftest.py
files only register fixtures defined here.
"""
