"""The relay tunnel's packet format, its keys and its replay window.

Owns: reading the pre-shared key file (refusing one that others may read), deriving the
per-session ChaCha20-Poly1305 keys, sealing and opening tunnel packets (HELLO, DATA, BYE)
with the header as associated data, the inner datagram encoding (family, group, port,
source, source port, TTL, payload) and the sliding replay window.
Must not: open sockets, log payloads, or keep per-peer state beyond the values it returns.

Packet layout (all integers big-endian)::

    header (26 bytes, authenticated, not encrypted)
      magic "MKR" | version 1 | type | flags | key id (4) | session id (8) | counter (8)
    ciphertext of the body | Poly1305 tag (16)

The key id is the first 4 bytes of SHA-256("mcastkit-relay-keyid" + key): a receiver
holding another key tells "wrong key" from "tampered" without trying to decrypt. Each
side picks a random 64-bit session id when it starts and encrypts with a key derived
from the pre-shared key and that session id (HKDF-SHA256), so a nonce (the packet
counter) never repeats under one key, even across restarts.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import ipaddress
import os
import stat
import struct
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from mcastkit import ErrorCode, McastValueError, UnsupportedError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

__all__ = [
    "CONTROL",
    "HEADER",
    "OVERHEAD_MAX",
    "TAG",
    "Drop",
    "Inner",
    "Kind",
    "Opened",
    "ReplayWindow",
    "SessionCipher",
    "TunnelKey",
    "decode_inner",
    "encode_inner",
    "load_key_file",
]

MAGIC: Final = b"MKR"
VERSION: Final = 1
_HDR: Final = struct.Struct("!3sBBB4sQQ")
HEADER: Final = _HDR.size  # 26
TAG: Final = 16
_INNER: Final = struct.Struct("!BBHHB")  # family, flags, port, source port, ttl
#: the largest tunnel packet overhead around a relayed payload (IPv6 group and source)
OVERHEAD_MAX: Final = HEADER + TAG + _INNER.size + 32
KEY_BYTES: Final = 32
REPLAY_WINDOW: Final = 4096
#: HELLO and BYE packets count from here; DATA from 0 (both under one session key, so
#: no nonce repeats), which keeps DATA counters gapless: a gap is a lost packet
CONTROL: Final = 1 << 63


class Kind(enum.IntEnum):
    """Tunnel packet types."""

    HELLO = 1  # handshake and keepalive: body = echo session id (8) | flags (1)
    DATA = 2  # one relayed datagram (see encode_inner)
    BYE = 3  # the sender is stopping; the link is down now


class Drop(enum.Enum):
    """Why a tunnel packet was dropped (the counter names in the relay's statistics)."""

    WRONG_KEY = "wrong_key"  # sealed with another key (key id differs)
    AUTH_FAILED = "auth_failed"  # right key id, but the tag does not verify: tampered
    REPLAYED = "replayed"  # counter already seen, or older than the replay window
    STALE_SESSION = "stale_session"  # a session this side has not established (old or forged)
    MALFORMED = "malformed"  # not a tunnel packet, wrong version, bad body
    OVERSIZED = "oversized"  # larger than this side's tunnel MTU


def _fail(msg: str) -> McastValueError:
    return McastValueError(msg, code=ErrorCode.BAD_VALUE)


def _decode_key(raw: bytes, path: str) -> bytes:
    """Base64 (what --make-key writes), hex, or exactly 32 raw bytes."""
    text = raw.strip()
    if text.isascii():
        if len(text) == 2 * KEY_BYTES:
            try:
                return binascii.unhexlify(text)
            except (binascii.Error, ValueError):
                pass
        try:
            key = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            key = b""
        if len(key) == KEY_BYTES:
            return key
    if len(raw) == KEY_BYTES:
        return raw
    raise _fail(
        f"key file {path}: expected a 32-byte key as base64 (44 characters), hex (64) or "
        "32 raw bytes; make one with 'mcastkit relay --make-key FILE'")


def load_key_file(path: str) -> TunnelKey:
    """Read the pre-shared key; refuse a file that group or others may read or write.

    Raises:
        McastValueError: the file is missing, not a regular file, readable or writable
            by others (the message names ``chmod 600``), or holds no valid key.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        raise _fail(f"key file {path} does not exist; make one with "
                    f"'mcastkit relay --make-key {path}'") from None
    except OSError as exc:
        raise _fail(f"key file {path}: cannot open it ({exc.strerror}); it must be a "
                    "regular file (not a symlink) the relay's user can read") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise _fail(f"key file {path} is not a regular file")
        who = _exposed_to(fd, st.st_mode)
        if who is not None:
            raise _fail(
                f"key file {path} is accessible by {who} (mode "
                f"{stat.S_IMODE(st.st_mode):04o}); refusing it. Run 'chmod 600 {path}' (and "
                f"'setfacl -b {path}' if it has an ACL) and consider the key exposed if "
                "others could read it")
        raw = os.read(fd, 4096)
    finally:
        os.close(fd)
    return TunnelKey(_decode_key(raw, path))


_ACL_USER, _ACL_GROUP_OBJ, _ACL_GROUP, _ACL_MASK, _ACL_OTHER = 2, 4, 8, 16, 32
_ACL_ENTRY = struct.Struct("<HHI")


def _exposed_to(fd: int, mode: int) -> str | None:
    """Who other than the file's owner, root and this process's user may read or write
    the file: None, or a description. Without an ACL the mode bits tell; with one (a
    systemd credential is 0400 plus a read ACL for the service's user) the entries do."""
    try:
        raw = os.getxattr(fd, "system.posix_acl_access")
    except OSError:  # no ACL (ENODATA) or none supported: the mode bits are the truth
        raw = b""
    if len(raw) < 4 or (len(raw) - 4) % _ACL_ENTRY.size:
        return "group or others" if mode & 0o077 else None
    entries = [_ACL_ENTRY.unpack_from(raw, off) for off in range(4, len(raw), 8)]
    mask = next((perm for tag, perm, _ in entries if tag == _ACL_MASK), 7)
    me = os.geteuid()
    for tag, perm, ident in entries:
        if tag == _ACL_OTHER and perm:
            return "others"
        if tag == _ACL_GROUP_OBJ and perm & mask:
            return "its group"
        if tag == _ACL_GROUP and perm & mask:
            return f"group {ident} (ACL)"
        if tag == _ACL_USER and perm & mask and ident != me:
            return f"user {ident} (ACL)"
    return None


def make_key_file(path: str) -> None:
    """Write a fresh random key (base64) to ``path`` with mode 0600; never overwrites.

    Raises:
        McastValueError: ``path`` exists already or cannot be created.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except FileExistsError:
        raise _fail(f"{path} exists; refusing to overwrite a key (remove it first)") from None
    except OSError as exc:
        raise _fail(f"cannot create key file {path}: {exc.strerror}") from None
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, base64.b64encode(os.urandom(KEY_BYTES)) + b"\n")
    finally:
        os.close(fd)


_CRYPTO: dict[str, Any] = {}


def _crypto() -> dict[str, Any]:
    """The ``cryptography`` names the tunnel uses, imported on first use: a relay between
    interfaces (and the rest of mcastkit) works without the package."""
    if not _CRYPTO:
        try:
            from cryptography.exceptions import InvalidTag
            from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
            from cryptography.hazmat.primitives.hashes import SHA256
            from cryptography.hazmat.primitives.kdf.hkdf import HKDF
        except ImportError:
            raise UnsupportedError(
                "the relay tunnel needs the 'cryptography' package; install it with "
                "pip install 'mcastkit[relay]'") from None
        _CRYPTO.update(InvalidTag=InvalidTag, ChaCha20Poly1305=ChaCha20Poly1305,
                       SHA256=SHA256, HKDF=HKDF)
    return _CRYPTO


class TunnelKey:
    """The pre-shared key: its public id and the per-session ciphers derived from it.
    ``repr`` never shows the key."""

    __slots__ = ("_key", "key_id")

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise _fail(f"a tunnel key has {KEY_BYTES} bytes, got {len(key)}")
        self._key = bytes(key)
        self.key_id = hashlib.sha256(b"mcastkit-relay-keyid" + self._key).digest()[:4]

    def __repr__(self) -> str:
        return f"<TunnelKey id={self.key_id.hex()}>"

    def session(self, session_id: int) -> SessionCipher:
        """The cipher for packets sent by session ``session_id``.

        Raises:
            UnsupportedError: the ``cryptography`` package is missing (the message names
                the ``relay`` extra).
        """
        c = _crypto()
        okm = c["HKDF"](algorithm=c["SHA256"](), length=KEY_BYTES, salt=None,
                        info=b"mcastkit-relay-v1 session " + session_id.to_bytes(8, "big")
                        ).derive(self._key)
        return SessionCipher(self.key_id, session_id, c["ChaCha20Poly1305"](okm),
                             c["InvalidTag"])


class Header(NamedTuple):
    """A parsed (not yet authenticated) packet header."""

    kind: int
    flags: int
    key_id: bytes
    session: int
    counter: int


def parse_header(packet: bytes) -> Header | None:
    """The header of ``packet``, or None if it is not a version-1 tunnel packet."""
    if len(packet) < HEADER + TAG:
        return None
    magic, ver, kind, flags, key_id, session, counter = _HDR.unpack_from(packet)
    if magic != MAGIC or ver != VERSION or kind not in (1, 2, 3):
        return None
    return Header(kind, flags, key_id, session, counter)


class SessionCipher:
    """Seals (as the sending session) or opens (a peer session's) packets."""

    __slots__ = ("_aead", "_invalid", "key_id", "session")

    def __init__(self, key_id: bytes, session: int, aead: ChaCha20Poly1305,
                 invalid_tag: type[Exception]) -> None:
        self.key_id = key_id
        self.session = session
        self._aead = aead
        self._invalid = invalid_tag

    def seal(self, kind: Kind, counter: int, body: bytes, flags: int = 0) -> bytes:
        """One packet: header + encrypted ``body`` + tag. ``counter`` must never repeat."""
        hdr = _HDR.pack(MAGIC, VERSION, kind, flags, self.key_id, self.session, counter)
        return hdr + self._aead.encrypt(b"\0\0\0\0" + counter.to_bytes(8, "big"), body, hdr)

    def open(self, packet: bytes, counter: int) -> bytes | None:
        """The body of an authentic ``packet`` (header already parsed), or None."""
        try:
            return self._aead.decrypt(b"\0\0\0\0" + counter.to_bytes(8, "big"),
                                      packet[HEADER:], packet[:HEADER])
        except self._invalid:
            return None


class Opened(NamedTuple):
    """An authenticated packet."""

    kind: Kind
    flags: int
    session: int
    counter: int
    body: bytes


class ReplayWindow:
    """Accept each counter once; refuse counters older than the newest by ``size`` or more
    (the RFC 6479 idea with a Python integer as the bitmap)."""

    __slots__ = ("_bits", "size", "top")

    def __init__(self, size: int = REPLAY_WINDOW) -> None:
        self.size = size
        self.top = -1
        self._bits = 0

    def check(self, counter: int) -> bool:
        """True if ``counter`` is new (nothing is recorded: call :meth:`accept` after the
        packet authenticated, so forged packets cannot move the window)."""
        if counter > self.top:
            return True
        back = self.top - counter
        return back < self.size and not (self._bits >> back) & 1

    def accept(self, counter: int) -> None:
        """Record ``counter`` as seen (after :meth:`check` said it is new)."""
        if counter > self.top:
            shift = counter - self.top
            self._bits = ((self._bits << shift) | 1) & ((1 << self.size) - 1) \
                if shift < self.size else 1
            self.top = counter
        else:
            self._bits |= 1 << (self.top - counter)


class Inner(NamedTuple):
    """A relayed datagram as carried in a DATA packet."""

    group: str
    port: int
    source: str
    source_port: int
    ttl: int
    data: bytes


_packed: dict[str, tuple[int, bytes]] = {}
_texts: dict[bytes, str] = {}
_CACHE_MAX = 4096


def _pack(addr: str) -> tuple[int, bytes]:
    """(version, packed) of an address text, cached (the hot path sees few addresses)."""
    hit = _packed.get(addr)
    if hit is None:
        if len(_packed) >= _CACHE_MAX:
            _packed.clear()
        ip = ipaddress.ip_address(addr.split("%", 1)[0])
        hit = _packed[addr] = (ip.version, ip.packed)
    return hit


def _text(raw: bytes) -> str:
    hit = _texts.get(raw)
    if hit is None:
        if len(_texts) >= _CACHE_MAX:
            _texts.clear()
        hit = _texts[raw] = str(ipaddress.ip_address(raw))
    return hit


def encode_inner(group: str, port: int, source: str, source_port: int, ttl: int | None,
                 data: bytes) -> bytes:
    """The DATA body: family, flags, port, source port, TTL, group, source, payload."""
    ver, g = _pack(group)
    _, s = _pack(source)
    return _INNER.pack(ver, 0, port, source_port, ttl if ttl is not None else 0) + g + s + data


def decode_inner(body: bytes) -> Inner | None:
    """Decode a DATA body; None when it is malformed (wrong family, short, not multicast)."""
    if len(body) < _INNER.size:
        return None
    fam, _flags, port, sport, ttl = _INNER.unpack_from(body)
    n = 4 if fam == 4 else 16 if fam == 6 else 0
    off = _INNER.size
    if not n or len(body) < off + 2 * n or port == 0:
        return None
    g = body[off:off + n]
    if not (0xE0 <= g[0] <= 0xEF or g == b"\xff\xff\xff\xff") if n == 4 else g[0] != 0xFF:
        return None
    return Inner(_text(g), port, _text(body[off + n:off + 2 * n]), sport, ttl,
                 body[off + 2 * n:])


def inner_overhead(version: int) -> int:
    """Bytes a DATA packet adds around a payload of an IPv4 (4) or IPv6 (6) group."""
    return HEADER + TAG + _INNER.size + (8 if version == 4 else 32)


def open_packet(packet: bytes, key: TunnelKey, cipher_for: dict[int, SessionCipher],
                h: Header | None = None) -> tuple[Opened | None, Drop | None]:
    """Authenticate ``packet``: (Opened, None) or (None, why it was dropped).

    ``cipher_for`` caches the ciphers of sessions already seen (bounded by the caller);
    ``h`` is the packet's header when the caller parsed it already.
    """
    if h is None:
        h = parse_header(packet)
        if h is None:
            return None, Drop.MALFORMED
    if h.key_id != key.key_id:
        return None, Drop.WRONG_KEY
    c = cipher_for.get(h.session)
    if c is None:
        c = key.session(h.session)
    body = c.open(packet, h.counter)
    if body is None:
        return None, Drop.AUTH_FAILED
    cipher_for[h.session] = c
    return Opened(Kind(h.kind), h.flags, h.session, h.counter, body), None
