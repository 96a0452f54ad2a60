"""The probing engine: one sweep skeleton (`_Sweep`) with two strategies, TCP connects and ICMP echoes.

The skeleton is a callback state machine on the running loop: at most `concurrency` probes in flight,
probes pulled lazily from an iterable of (IPv4 as int, port, tag), an optional rate (probes per
second, paced by a timer) and time budget (after it no new probe starts, `stats.complete` is False),
and timeouts checked in FIFO order by one timer that also collects answers the loop's reader has not
yet. A strategy says how a probe starts (`_start`), how answers arrive (`_drain`, on the strategy's one
readable file descriptor) and what giving up on a probe takes (`_abandon`); `record(tag, alive)` gets
each verdict.
"""

from __future__ import annotations

import _socket
import asyncio
import errno
import select
import socket
import struct
import sys
import time
from array import array
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

from pollwatch.probes.diffscan.targets import hash32, ntoa

ALIVE_ERRNOS = {0, errno.ECONNREFUSED, errno.ECONNRESET}
# The prober's own problem (no socket, no local port, no route on the vantage): not an answer either way.
LOCAL_ERRNOS = {
    errno.EMFILE,
    errno.ENFILE,
    errno.ENOBUFS,
    errno.ENOMEM,
    errno.EADDRNOTAVAIL,
    errno.EACCES,
    errno.EPERM,
}
_LINGER0 = struct.pack("ii", 1, 0)

# what `_Sweep._start` says of a probe: in flight (takes a slot), concluded at once, or not sent (try later)
IN_FLIGHT, CONCLUDED, NOT_SENT = 1, 0, -1


@dataclass(slots=True)
class EngineStats:
    probes: int = 0
    answers: int = 0
    timeouts: int = 0
    local_errors: int = 0
    elapsed: float = 0.0
    complete: bool = True


class _Sweep:
    """The sweep's skeleton; a strategy subclass sends probes and collects answers.

    `pending` maps a strategy's key (a socket's fd, a probe's tag) to (token, tag), where the token is what
    identifies this probe under that key (a key may be reused); `deadlines` holds (deadline, key, token) in
    deadline order."""

    def __init__(
        self,
        probes: Iterable[tuple[int, int, int]],
        record: Callable[[int, bool], None],
        concurrency: int,
        timeout: float,
        rate: float | None,
        budget: float | None,
    ):
        self.loop = asyncio.get_running_loop()
        self.it = iter(probes)
        self.record = record
        self.concurrency, self.timeout, self.rate = concurrency, timeout, rate
        self.stats = EngineStats()
        self.pending: dict[int, tuple[Any, int]] = {}
        self.deadlines: deque[tuple[float, int, Any]] = deque()
        self.held: list[tuple[int, int, int]] = []  # a probe the strategy could not send yet, sent again later
        self.launched = 0
        self.exhausted = False
        self.done: asyncio.Future[None] = self.loop.create_future()
        self.started = time.monotonic()
        self.stop_at = self.started + budget if budget is not None else None
        self.tick = min(max(timeout / 8, 0.005), 0.1)
        self.pace: asyncio.TimerHandle | None = None
        self.timer: asyncio.TimerHandle | None = None

    # --- what a strategy provides

    def fileno(self) -> int:
        raise NotImplementedError

    def _start(self, addr: int, port: int, tag: int, now: float) -> int:
        """Start one probe: IN_FLIGHT (added to `pending` and `deadlines`), CONCLUDED or NOT_SENT."""
        raise NotImplementedError

    def _drain(self) -> None:
        """Collect every answer that has arrived."""
        raise NotImplementedError

    def _abandon(self, token: Any) -> None:
        """Give up on a probe that timed out."""

    def _close(self) -> None:
        raise NotImplementedError

    # --- the skeleton

    async def run(self) -> EngineStats:
        fd = self.fileno()
        self.loop.add_reader(fd, self._on_readable)
        self.timer = self.loop.call_later(self.tick, self._expire)
        try:
            self._launch()
            await self.done
        finally:
            self.timer.cancel()
            if self.pace is not None:
                self.pace.cancel()
            self.loop.remove_reader(fd)
            self._close()
        self.stats.elapsed = time.monotonic() - self.started
        return self.stats

    def _finish_if_idle(self) -> None:
        if self.exhausted and not self.pending and not self.held and not self.done.done():
            self.done.set_result(None)

    def _repace(self) -> None:
        self.pace = None
        self._launch()

    def _launch(self) -> None:
        slots = self.concurrency - len(self.pending)
        rate = self.rate
        if rate is not None:
            allowed = int((time.monotonic() - self.started) * rate) + 1 - self.launched
            if allowed < slots:
                slots = allowed
                if self.pace is None and not self.exhausted:
                    self.pace = self.loop.call_later(max(1.0 / rate, 0.001), self._repace)
        now = time.monotonic()
        if self.stop_at is not None and now >= self.stop_at and not self.exhausted:
            self.exhausted = True
            self.stats.complete = False
            self.held.clear()
            self._finish_if_idle()
            return
        it, held, start = self.it, self.held, self._start
        launched = self.launched
        while slots > 0:
            if held:
                addr, port, tag = held.pop()
            else:
                try:
                    addr, port, tag = next(it)
                except StopIteration:
                    self.exhausted = True
                    break
            state = start(addr, port, tag, now)
            if state == NOT_SENT:
                held.append((addr, port, tag))  # e.g. a full send buffer: again on the next timer tick
                break
            launched += 1
            slots -= state
        self.launched = launched
        if self.exhausted:
            self._finish_if_idle()

    def _on_readable(self) -> None:
        self._drain()
        self._launch()
        self._finish_if_idle()

    def _expire(self) -> None:
        self._drain()  # answers that have already arrived are answers, however late this loop got to them
        now = time.monotonic()
        deadlines, pending, stats = self.deadlines, self.pending, self.stats
        while deadlines:
            deadline, key, token = deadlines[0]
            entry = pending.get(key)
            current = entry is not None and entry[0] is token  # not answered already (the key may be reused)
            if deadline > now and current:
                break
            deadlines.popleft()
            if not current:
                continue
            del pending[key]
            self._abandon(token)
            stats.probes += 1
            stats.timeouts += 1
            self.record(entry[1], False)  # type: ignore[index]
        self._launch()  # the answers or the expiries may have freed slots
        self._finish_if_idle()
        if not self.done.done():
            self.timer = self.loop.call_later(self.tick, self._expire)


class _TcpSweep(_Sweep):
    """Non-blocking connects, the sockets in one epoll set of our own that the loop watches as a single
    reader (closing a socket drops it from the set: no per-probe handle or unregister call). A SYN-ACK or a
    reset is an answer (the host is there); silence or unreachable is not."""

    def __init__(self, *args: Any) -> None:
        if not hasattr(select, "epoll"):
            raise RuntimeError("diffscan needs Linux (epoll); run it on a Linux vantage")
        super().__init__(*args)
        self.ep = select.epoll()

    def fileno(self) -> int:
        return self.ep.fileno()

    def _start(
        self,
        addr: int,
        port: int,
        tag: int,
        now: float,
        new_socket: Any = _socket.socket,  # the C socket type: no Python-level __init__/close per probe
        family: int = socket.AF_INET,
        kind: int = socket.SOCK_STREAM | socket.SOCK_NONBLOCK,
        einprogress: int = errno.EINPROGRESS,
        epollout: int = select.EPOLLOUT,
    ) -> int:
        try:
            sock = new_socket(family, kind)
        except OSError:
            self.stats.local_errors += 1
            return CONCLUDED
        err = sock.connect_ex((ntoa(addr), port))
        if err == einprogress:
            fd = sock.fileno()
            self.ep.register(fd, epollout)
            self.pending[fd] = (sock, tag)
            self.deadlines.append((now + self.timeout, fd, sock))
            return IN_FLIGHT
        self._conclude(sock, tag, err)
        return CONCLUDED

    def _conclude(
        self, sock: socket.socket, tag: int, err: int, local: set[int] = LOCAL_ERRNOS, ok: set[int] = ALIVE_ERRNOS
    ) -> None:
        stats = self.stats
        if err in local:
            stats.local_errors += 1
        else:
            stats.probes += 1
            alive = err in ok
            stats.answers += alive
            if err == 0:  # connected: close with a reset, leaving no TIME_WAIT behind
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER0)
            self.record(tag, alive)
        sock.close()  # also removes it from the epoll set

    def _drain(self) -> None:
        poll, pop, conclude = self.ep.poll, self.pending.pop, self._conclude
        sol, so_error = socket.SOL_SOCKET, socket.SO_ERROR
        while True:
            events = poll(0, 4096)
            for fd, _ in events:
                entry = pop(fd, None)
                if entry is not None:
                    sock, tag = entry
                    conclude(sock, tag, sock.getsockopt(sol, so_error))
            if len(events) < 4096:
                return

    def _abandon(self, token: Any) -> None:
        token.close()

    def _close(self) -> None:
        for sock, _ in self.pending.values():
            sock.close()
        self.ep.close()


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    words = array("H", data)
    if sys.byteorder == "little":
        words.byteswap()  # the Internet checksum sums big-endian 16-bit words
    total = sum(words)
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def icmp_available() -> str | None:
    """None when this process may send ICMP echo requests over a raw socket, else why not."""
    try:
        socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP).close()
        return None
    except OSError as exc:
        return f"no raw ICMP socket ({exc.strerror or exc}): run as root or grant CAP_NET_RAW, or use method tcp"


class _IcmpSweep(_Sweep):
    """ICMP echo requests over one raw socket (the port is ignored). The probe's tag travels in the echo
    payload and comes back in the reply, so a reply is matched to its probe by a dict entry; only an echo
    reply from the probed address is an answer."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        sock = self.sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        sock.setblocking(False)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        self.ident = hash32(id(sock), int(time.time())) & 0xFFFF
        self.seq = 0

    def fileno(self) -> int:
        return self.sock.fileno()

    def _start(self, addr: int, port: int, tag: int, now: float) -> int:
        self.seq = seq = (self.seq + 1) & 0xFFFF
        payload = struct.pack("!Q", tag)
        header = struct.pack("!BBHHH", 8, 0, 0, self.ident, seq)
        packet = struct.pack("!BBHHH", 8, 0, _checksum(header + payload), self.ident, seq) + payload
        try:
            self.sock.sendto(packet, (ntoa(addr), 0))
        except BlockingIOError:
            return NOT_SENT
        except OSError as exc:
            if exc.errno in LOCAL_ERRNOS:
                self.stats.local_errors += 1
            else:  # no route, network unreachable: nothing answers there
                self.stats.probes += 1
                self.record(tag, False)
            return CONCLUDED
        self.pending[tag] = (addr, tag)
        self.deadlines.append((now + self.timeout, tag, addr))
        return IN_FLIGHT

    def _drain(self) -> None:
        sock, pending, stats, ident = self.sock, self.pending, self.stats, self.ident
        while True:
            try:
                data, (source, _) = sock.recvfrom(2048)
            except (BlockingIOError, InterruptedError):
                return
            ihl = (data[0] & 0x0F) * 4
            if len(data) < ihl + 16 or data[ihl] != 0:  # echo replies only (type 0)
                continue
            if struct.unpack_from("!H", data, ihl + 4)[0] != ident:
                continue
            tag = struct.unpack_from("!Q", data, ihl + 8)[0]
            entry = pending.get(tag)
            if entry is None or ntoa(entry[0]) != source:
                continue  # late, duplicate, or not from the probed address
            del pending[tag]
            stats.probes += 1
            stats.answers += 1
            self.record(tag, True)

    def _close(self) -> None:
        self.sock.close()


async def sweep(
    method: Literal["tcp", "icmp"],
    probes: Iterable[tuple[int, int, int]],
    record: Callable[[int, bool], None],
    *,
    concurrency: int = 1024,
    timeout: float = 1.5,
    rate: float | None = None,
    budget: float | None = None,
) -> EngineStats:
    """Probe each (IPv4 as int, port, tag) once; `record(tag, alive)` gets each verdict. `tcp`: connect to the
    port (a reset is an answer: the host is there; silence or unreachable is not); `icmp`: an echo request over
    one raw socket (the port is ignored). After `budget` seconds no new probe starts."""
    strategy = _IcmpSweep if method == "icmp" else _TcpSweep
    return await strategy(probes, record, concurrency, timeout, rate, budget).run()


tcp_sweep = partial(sweep, "tcp")
icmp_sweep = partial(sweep, "icmp")
