"""The relay's optional HTTP health endpoint, for container liveness and readiness probes.

Owns: a tiny HTTP/1.0 server on asyncio: ``GET /healthz`` (200 while the relay runs),
``GET /readyz`` (200 when every interface is present and the tunnel, if any, is up;
503 otherwise, with the reason) and ``GET /stats`` (the counters as JSON).
Must not: serve anything else, read request bodies, or block the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import TYPE_CHECKING, Any

from mcastkit import McastOSError

if TYPE_CHECKING:
    from ._engine import Relay

__all__ = ["HealthServer"]

_REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}


class HealthServer:
    """Serves one relay's health on (address, port)."""

    def __init__(self, relay: Relay) -> None:
        self._relay = relay
        self._server: asyncio.AbstractServer | None = None
        self.address: tuple[str, int] = ("", 0)

    async def start(self, host: str, port: int) -> None:
        """Listen on ``host:port`` (port 0: the kernel picks; read :attr:`address`).

        Raises:
            McastOSError: the address is taken or not local (names ``--health``).
        """
        try:
            self._server = await asyncio.start_server(self._serve, host, port)
        except OSError as exc:
            raise McastOSError(exc.errno or 0, f"--health {host}:{port}: "
                               f"{exc.strerror or exc}; choose another address or port",
                               op="health") from None
        sock = self._server.sockets[0].getsockname()
        self.address = (str(sock[0]), int(sock[1]))

    async def close(self) -> None:
        """Stop serving (idempotent)."""
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)
            self._server = None

    def _answer(self, method: str, path: str) -> tuple[int, dict[str, Any]]:
        if method != "GET":
            return 405, {"error": "use GET"}
        r = self._relay
        st = r.stats()
        if path == "/healthz":
            return 200, {"status": "running", "uptime_s": round(st.uptime_s, 1)}
        if path == "/readyz":
            why = [f"waiting for {p}" for p in st.pending]
            if st.tunnel is not None and st.tunnel["state"] != "up":
                why.append("tunnel down")
            return (503 if why else 200), {"ready": not why, "reasons": why}
        if path == "/stats":
            return 200, st.as_dict()
        return 404, {"error": "try /healthz, /readyz or /stats"}

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), 5.0)
            parts = line.decode("latin-1").split()
            method, path = (parts[0], parts[1]) if len(parts) >= 2 else ("", "")
            code, body = self._answer(method, path.split("?", 1)[0])
            data = json.dumps(body, separators=(",", ":")).encode() + b"\n"
            writer.write(f"HTTP/1.0 {code} {_REASONS[code]}\r\nContent-Type: application/json"
                         f"\r\nContent-Length: {len(data)}\r\nConnection: close\r\n\r\n"
                         .encode() + data)
            await writer.drain()
        except (OSError, asyncio.TimeoutError, UnicodeDecodeError):
            pass
        finally:
            writer.close()
