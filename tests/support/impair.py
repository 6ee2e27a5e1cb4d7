"""Loss, duplicates and reordering on a veth, made by the kernel (not by mcastkit).

This kernel has no ``sch_netem``, so the three impairments are built from what it has:
- loss: an nftables rule in the receiver's prerouting drops every Nth datagram;
- duplicates: an nftables ``dup`` in the sender's output sends every Mth datagram twice;
- reordering: nftables gives every Kth datagram the priority of a slow HTB class on the
  sender's interface, so it leaves after later ones. This one depends on timing (a
  sender slower than the slow class is not reordered at all): ``reorder_every=0`` leaves
  it out for a test that sends out of order itself.
"""

from __future__ import annotations

from tests.support.netns import Netns


def _nft(ns: Netns, rules: str) -> None:
    r = ns.run("nft", "-f", "-", input=rules, check=False)
    if r.returncode != 0:
        raise AssertionError(f"nft failed: {r.stderr}")


def impair(sender: Netns, receiver: Netns, group: str, port: int, *, ifname: str = "eth0",
           loss_every: int = 7, dup_every: int = 6, reorder_every: int = 5,
           slow_kbit: int = 300) -> None:
    """Impair UDP datagrams to ``group``:``port`` between the two namespaces."""
    sel = f"ip daddr {group} udp dport {port}"
    slots = ", ".join(f"{i} : 1:{20 if i == 1 else 10}" for i in range(reorder_every))
    reorder = (f"{sel} meta priority set numgen inc mod {reorder_every} map {{ {slots} }}"
               if reorder_every else "")
    _nft(sender, f"""
table ip impair {{
  chain out {{
    type filter hook output priority 0;
    {reorder}
    {sel} numgen inc mod {dup_every} == {dup_every - 1} dup to {group} device "{ifname}"
  }}
}}""")
    _nft(receiver, f"""
table ip impair {{
  chain pre {{
    type filter hook prerouting priority 0;
    {sel} numgen inc mod {loss_every} == 3 drop
  }}
}}""")
    if not reorder_every:
        return
    tc = ["tc"]
    for args in (["qdisc", "add", "dev", ifname, "root", "handle", "1:", "htb", "default",
                  "10"],
                 ["class", "add", "dev", ifname, "parent", "1:", "classid", "1:10", "htb",
                  "rate", "1gbit"],
                 ["class", "add", "dev", ifname, "parent", "1:", "classid", "1:20", "htb",
                  "rate", f"{slow_kbit}kbit", "burst", "300b", "cburst", "300b"]):
        r = sender.run(*tc, *args, check=False)
        if r.returncode != 0:
            raise AssertionError(f"tc {' '.join(args)} failed: {r.stderr}")


def oracle(seqs: list[int], bits: int, end_next: int | None = None) -> dict[str, int]:
    """Counts from the arrival order, computed the plain way (no window, no bit masks):
    the reference for :class:`mcastkit.seq.SeqAnalyzer`."""
    mod = 1 << bits
    ext: list[int] = []
    for s in seqs:
        if not ext:
            ext.append(s)
            continue
        top = max(ext)
        d = (s - top) % mod
        ext.append(top + d if d < mod // 2 else top + d - mod)
    seen: set[int] = set()
    reordered = dups = 0
    top = None
    for v in ext:
        if v in seen:
            dups += 1
            continue
        if top is not None and v < top:
            reordered += 1
        seen.add(v)
        top = v if top is None else max(top, v)
    lo, hi = min(seen), max(seen)
    expected = hi - lo + 1
    if end_next is not None:
        expected = max(expected, end_next - lo)
    missing = sorted(set(range(lo, hi + 1)) - seen)
    gaps = sum(1 for i, m in enumerate(missing) if i == 0 or missing[i - 1] != m - 1)
    return {"expected": expected, "lost": expected - len(seen), "reordered": reordered,
            "duplicates": dups, "gaps": gaps, "datagrams": len(ext)}

