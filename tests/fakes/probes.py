"""Real local servers for the probe tests and benches (loopback only, port 0).

- `FakeDns`: a UDP DNS server answering per name: an address, NXDOMAIN, SERVFAIL, or silence.
- `FakeWeb`: HTTPS/HTTP listeners on 127.0.0.1, one per behaviour (a real page, a blockpage, a
  reset, a hang, a wrong certificate, a full accept queue that silently drops SYNs, ...), with
  certificates from a throwaway CA the client trusts through `ca_file`.
Both run their own event loop or thread, so they work from sync tests, async tests and benches.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import ssl
import struct
import threading
from pathlib import Path

import dns.flags
import dns.message
import dns.rcode
import dns.rrset

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

BLOCKPAGE_TEXT = "Access to this resource has been restricted by order of the authorities"
PAGE_TEXT = "Welcome to the real service"
OBJECT_SIZE = 32 * 1024


# --- certificates ---------------------------------------------------------------------------------


def make_pki(directory: Path, names: list[str], wrong_names: list[str]) -> dict[str, Path]:
    """A CA, a leaf for `names` and a leaf for `wrong_names`, all ECDSA P-256; returns file paths."""
    now = dt.datetime.now(dt.timezone.utc)

    def key():
        return ec.generate_private_key(ec.SECP256R1())

    ca_key = key()
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pollwatch test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    out = {"ca": directory / "ca.pem"}
    out["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    for label, sans in (("leaf", names), ("wrong", wrong_names)):
        k = key()
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, sans[0])]))
            .issuer_name(ca_name)
            .public_key(k.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in sans]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        cert_path, key_path = directory / f"{label}.pem", directory / f"{label}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(
            k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        )
        out[label] = cert_path
        out[f"{label}_key"] = key_path
    return out


# --- DNS ------------------------------------------------------------------------------------------


class FakeDns:
    """UDP DNS on 127.0.0.1: `records` maps a name to an IPv4 address, 'nxdomain', 'servfail' or 'drop'."""

    def __init__(self, records: dict[str, str]):
        self.records = {n.rstrip(".").lower(): v for n, v in records.items()}
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.address = f"127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> "FakeDns":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()

    def _serve(self) -> None:
        while True:
            try:
                data, peer = self.sock.recvfrom(4096)
            except OSError:
                return
            try:
                query = dns.message.from_wire(data)
            except Exception:
                continue
            qname = query.question[0].name.to_text().rstrip(".").lower()
            action = self.records.get(qname, "nxdomain")
            if action == "drop":
                continue
            reply = dns.message.make_response(query)
            reply.flags |= dns.flags.RA
            if action == "nxdomain":
                reply.set_rcode(dns.rcode.NXDOMAIN)
            elif action == "servfail":
                reply.set_rcode(dns.rcode.SERVFAIL)
            else:
                reply.answer.append(dns.rrset.from_text(query.question[0].name, 60, "IN", "A", action))
            try:
                self.sock.sendto(reply.to_wire(), peer)
            except OSError:
                return


# --- silent drops on loopback --------------------------------------------------------------------


def full_listener(host: str, port: int = 0) -> tuple[int, list[socket.socket]]:
    """A listener whose accept queue is full: the kernel silently drops further SYNs to host:port.

    Returns the port and the sockets to keep open (closing them ends the drop).
    """
    lst = socket.socket()
    lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lst.bind((host, port))
    lst.listen(0)
    port = lst.getsockname()[1]
    filler = socket.create_connection((host, port), timeout=2)
    return port, [lst, filler]


# --- web servers ----------------------------------------------------------------------------------


def _reset(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


def _response(status: int, body: bytes, reason: str = "OK", chunked: bool = False) -> bytes:
    if chunked:
        chunks = b"".join(
            b"%x\r\n%s\r\n" % (len(body[i : i + 1000]), body[i : i + 1000]) for i in range(0, len(body), 1000)
        )
        return (
            (
                f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/html\r\nTransfer-Encoding: "
                "chunked\r\nConnection: close\r\n\r\n"
            ).encode()
            + chunks
            + b"0\r\n\r\n"
        )
    return (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/html\r\nContent-Length: {len(body)}\r\nConnection: "
        "close\r\n\r\n"
    ).encode() + body


PAGE = f"<html><head><title>Service</title></head><body>{PAGE_TEXT}</body></html>".encode()
BLOCKPAGE = f"<html><head><title>Blocked</title></head><body>{BLOCKPAGE_TEXT}</body></html>".encode()
OBJECT = b"x" * OBJECT_SIZE

# behaviour -> (tls, handler kind)
BEHAVIOURS = {
    "ok": "https",
    "ok_http": "http",
    "chunked": "https",
    "blockpage": "https",
    "forbidden": "https",
    "error500": "https",
    "garbage": "https",
    "mismatch": "https-wrong",
    "reset_tls": "tcp",
    "hang": "tcp",
    "reset_http": "http",
    "refused": "none",
    "drop": "full",
}


class FakeWeb:
    """One loopback listener per behaviour (see BEHAVIOURS), served by an event loop in a thread."""

    def __init__(self, pki: dict[str, Path]):
        self.pki = pki
        self.ports: dict[str, int] = {}
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._servers: list[asyncio.AbstractServer] = []
        self._keep: list[socket.socket] = []
        self._hung: list[asyncio.StreamWriter] = []

    def __enter__(self) -> "FakeWeb":
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        for s in self._keep:
            s.close()

    def _ctx(self, label: str) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(self.pki[label], self.pki[f"{label}_key"])
        return ctx

    async def _start(self) -> None:
        for name, kind in BEHAVIOURS.items():
            if kind == "none":
                s = socket.socket()
                s.bind(("127.0.0.1", 0))
                self.ports[name] = s.getsockname()[1]
                s.close()  # nothing listens there now: connects are refused
                continue
            if kind == "full":
                self.ports[name] = self._full_listener()
                continue
            ssl_ctx = self._ctx("leaf") if kind == "https" else self._ctx("wrong") if kind == "https-wrong" else None
            server = await asyncio.start_server(
                lambda r, w, name=name: self._handle(name, r, w),
                "127.0.0.1",
                0,
                ssl=ssl_ctx,
                backlog=1024,
                ssl_handshake_timeout=30 if ssl_ctx else None,
            )
            self._servers.append(server)
            self.ports[name] = server.sockets[0].getsockname()[1]

    def _full_listener(self) -> int:
        port, socks = full_listener("127.0.0.1")
        self._keep += socks
        return port

    async def _stop(self) -> None:
        for w in self._hung:
            w.transport.abort()
        for server in self._servers:
            server.close()

    async def _handle(self, name: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if name == "reset_tls":  # like a middlebox that reads the ClientHello's SNI, then resets
                await reader.read(1)
                _reset(writer)
                return
            if name == "hang":
                self._hung.append(writer)
                return
            request = await reader.readuntil(b"\r\n\r\n")
            if name == "reset_http":
                _reset(writer)
                return
            path = request.split(b" ", 2)[1]
            if name == "garbage":
                writer.write(b"SSH-2.0-not-http\r\n\r\n")
            elif name == "blockpage":
                writer.write(_response(200, BLOCKPAGE))
            elif name == "forbidden":
                writer.write(_response(403, b"<html>Forbidden</html>", "Forbidden"))
            elif name == "error500":
                writer.write(_response(500, b"oops", "Internal Server Error"))
            elif path == b"/object":
                writer.write(_response(200, OBJECT))
            else:
                writer.write(_response(200, PAGE, chunked=name == "chunked"))
            await writer.drain()
            writer.close()
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError, OSError):
            writer.transport.abort()
