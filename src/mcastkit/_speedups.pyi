"""Type stub of the optional compiled accelerator (src/mcastkit/_speedups.c)."""

from collections.abc import Callable, Sequence

from ._packet import Datagram

ABI: int

def setup(datagram_type: type[Datagram], kinds: Sequence[tuple[int, int, int]]) -> None: ...
def build_epbs(out: bytearray, pos: int, batch: Sequence[Datagram], start: int, port: int,
               ifid: int, ifindex: int | None, linktype: int, prev_drops: int, limit: int, /
               ) -> tuple[int, int, int]: ...
def sendmmsg(fd: int, payloads: Sequence[bytes | bytearray | memoryview], sockaddr: bytes,
             flags: int, /) -> int: ...
def sendto(fd: int, payload: bytes | bytearray | memoryview, sockaddr: bytes, flags: int, /
           ) -> int: ...

def udp_rows(batch: list[tuple[int, int | None, bytes, int, int, int, str | None, str | None]],
             general: Callable[[tuple[int, int | None, bytes, int, int, int, str | None,
                                      str | None]],
                               tuple[int | None, str, int, str, int, bytes, int, int,
                                     bool | None] | None],
             outgoing: bool, linktypes: dict[int, int], name4: Callable[[int], str],
             name6: Callable[[bytes], str], /
             ) -> tuple[list[tuple[int | None, str, int, str, int, bytes, int, int,
                                   bool | None]], int]: ...

class Ring:
    summary: tuple[str | None, int | None, int | None, int, int] | None
    slots: int
    def __init__(self, family: int, recv_size: int, slots: int = 64) -> None: ...
    def recv(self, fd: int, max_count: int) -> list[Datagram]: ...
    def _decode(self, data: bytes, name: bytes, ctrl: bytes, flags: int = 0) -> Datagram: ...
