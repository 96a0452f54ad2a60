"""The one registry of secrets, and `scrub`, which removes them from outside text in any encoding.

A server may echo what it was sent: a Cloudflare error quoting the `Authorization` header, a
proxy's 404 naming the webhook path it could not route, a JSON body with the token escaped or
base64-encoded. Secrets are registered where pollwatch loads them (`Settings`, Prefect Secret
blocks, the clients handed one) and scrubbed where outside text enters: the HTTP layer's errors
and parsed responses (`pollwatch/sources/http.py`) and the Slack transports' errors
(`pollwatch/notify/transports.py`). Everything downstream (notices, gaps, alerts, the audit log,
Prefect's logs, the console, Slack) only ever sees `***`.

Forms removed, per secret of at least `MIN_LENGTH` characters:
- each character as itself or escaped, mixed freely: percent-encoded once or twice (any hex case),
  JSON `\\uXXXX` / `\\/` / `\\"`, HTML `&#NN;` / `&#xHH;`, `\\xHH`, `+` for a space;
- hexadecimal (any case);
- base64 and base64url at each of the three byte alignments, so the secret is also found inside a
  longer encoded string (`Basic base64(user:token)`);
- for a URL (a webhook), also its path and last path segment, its password and secret-looking
  query values;
and, registered or not, anything shaped like a Slack token or webhook URL.
"""

from __future__ import annotations

import base64
import re
import threading
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from pydantic import SecretStr

MASK = "***"
MIN_LENGTH = 8  # shorter values would mask ordinary words; no real credential is this short

# Credentials recognisable by their shape alone (Slack's token prefixes, its webhook host).
SHAPES = (r"xox[a-z]-[A-Za-z0-9-]+", r"xapp-[A-Za-z0-9-]+", r"https?://hooks\.slack\.com/\S+")
# Query parameters whose values are credentials (also dropped from recorded URLs by the HTTP layer).
SECRET_PARAMS = frozenset(
    {"token", "api_key", "apikey", "key", "access_token", "auth", "password", "secret", "sig", "signature"}
)


def _char(c: str) -> str:
    """A regex for one character of a secret: itself or any one-layer escape of it (backslashes doubled or not:
    a JSON text quoted inside another keeps its escapes as `\\\\u0041`)."""
    raw = c.encode("utf-8")
    code = ord(c)
    units = [code] if code < 0x10000 else [0xD800 + ((code - 0x10000) >> 10), 0xDC00 + ((code - 0x10000) & 0x3FF)]
    forms = [
        "".join(f"%{b:02x}" for b in raw),
        "".join(f"%25{b:02x}" for b in raw),
        "".join(f"\\\\+x{b:02x}" for b in raw),
        "".join(f"\\\\+u{u:04x}" for u in units),
        f"&#x0*{code:x};",
    ]
    alts = [re.escape(c), f"&#0*{code};", f"(?i:{'|'.join(forms)})"]
    if c in '/"\\':
        alts.append("\\\\+" + re.escape(c))
    if c == " ":
        alts.append(r"\+")
    return "(?:" + "|".join(alts) + ")"


def _base64_forms(secret: bytes) -> list[str]:
    """The base64 text any encoding of `secret` contains, at each byte offset modulo 3."""
    out = []
    for k in range(3):
        first, last = -(-8 * k // 6), 8 * (k + len(secret)) // 6  # output characters made of the secret's bits only
        for enc in (base64.b64encode, base64.urlsafe_b64encode):
            piece = enc(b"\0" * k + secret).decode()[first:last]
            if len(piece) >= MIN_LENGTH:
                out.append(re.escape(piece))
    return out


def _forms(secret: str) -> list[str]:
    raw = secret.encode("utf-8")
    return ["".join(_char(c) for c in secret), f"(?i:{raw.hex()})", *_base64_forms(raw)]


def _variants(value: str) -> list[str]:
    """The value, and for a URL the parts of it that are secret on their own."""
    out = [value]
    if re.match(r"[a-z][a-z0-9+.-]*://", value, re.I):
        parts = urlsplit(value)
        if parts.password:
            out.append(parts.password)
        if parts.path.strip("/"):
            out.append(parts.path)
            out.append(parts.path.rstrip("/").rsplit("/", 1)[-1])
        out += [v for k, v in parse_qsl(parts.query) if k.lower() in SECRET_PARAMS]
    return [v for v in out if len(v) >= MIN_LENGTH]


def _needles(secret: str) -> list[bytes] | None:
    """Short literals (ASCII-lowercased), one of which every usual encoding of `secret` contains; None: no such set."""
    raw = secret.encode("utf-8")
    runs = sorted(re.findall(r"[A-Za-z0-9._~-]{4,}", secret), key=len, reverse=True)  # what no usual encoder escapes
    if not runs:
        return None
    first = secret[0]  # a secret with every character escaped: its first, as JSON, HTML and percent escape it
    out = [
        runs[0],
        raw[:4].hex(),
        f"\\u{ord(first):04x}",
        f"&#{ord(first)};",
        "".join(f"%{b:02x}" for b in first.encode("utf-8")),
    ]
    for k in range(3):
        first, last = -(-8 * k // 6), 8 * (k + len(raw)) // 6
        pieces = [enc(b"\0" * k + raw).decode()[first:last] for enc in (base64.b64encode, base64.urlsafe_b64encode)]
        out += [p[:8] for p in pieces if len(p) >= MIN_LENGTH]
    return sorted({n.lower().encode("utf-8") for n in out})


_SHAPES = [re.compile(p) for p in SHAPES]
_SHAPES_BYTES = [re.compile(p.encode()) for p in SHAPES]
_ASCII_LOWER = {c: c + 32 for c in range(ord("A"), ord("Z") + 1)}


class Registry:
    """A set of secrets and the patterns that find them; the process has one
    (`register`, `scrub`), tests make their own.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._secrets: set[str] = set()
        self._pattern: tuple[re.Pattern[str], re.Pattern[bytes]] | None = None
        self._needles: list[bytes] | None = []
        self._window = 0

    def __len__(self) -> int:
        return len(self._secrets)

    def register(self, *values: SecretStr | str | None) -> None:
        """Remember secrets (SecretStr or str; None and short values are ignored)."""
        new = {
            v
            for value in values
            if value is not None
            for v in _variants(value.get_secret_value() if isinstance(value, SecretStr) else str(value))
        }
        with self._lock:
            if new <= self._secrets:
                return
            self._secrets.update(new)
            # longest first: a URL is masked whole before its path
            ordered = sorted(self._secrets, key=len, reverse=True)
            pattern = "(?i:" + "|".join(f for s in ordered for f in _forms(s)) + ")"
            # a URL's needles are its path's
            roots = [s for s in ordered if not any(t != s and t in s for t in ordered)]
            needles = [_needles(s) for s in roots]
            self._needles = None if any(n is None for n in needles) else sorted({x for n in needles for x in n or []})
            # the longest form of the longest secret fits either side of a needle
            self._window = 16 * len(ordered[0]) + 64
            self._pattern = (re.compile(pattern), re.compile(pattern.encode("utf-8")))

    def spans(self, data: str | bytes) -> list[tuple[int, int]]:
        """Where secrets are in `data`: a fast literal search for needles, the full pattern only near a hit."""
        text = isinstance(data, str)
        out = [m.span() for p in (_SHAPES if text else _SHAPES_BYTES) for m in p.finditer(data)]  # type: ignore[attr-defined]
        compiled, needles, window = self._pattern, self._needles, self._window
        if compiled is None:
            return out
        pattern: Any = compiled[0] if text else compiled[1]
        if len(data) <= 4 * window or needles is None:
            return out + [m.span() for m in pattern.finditer(data)]
        low: Any = data.lower() if not text or data.isascii() else data.translate(_ASCII_LOWER)  # type: ignore[union-attr]
        windows: list[tuple[int, int]] = []
        for needle in needles:
            n: Any = needle if not text else needle.decode("utf-8")
            i = low.find(n)
            while i >= 0:
                windows.append((max(0, i - window), i + window))
                i = low.find(n, i + 1)
        merged: list[list[int]] = []
        for lo, hi in sorted(windows):
            if merged and lo <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], hi)
            else:
                merged.append([lo, hi])
        for lo, hi in merged:
            out += [m.span() for m in pattern.finditer(data, lo, hi)]
        return out

    def scrub(self, text: Any) -> str:
        """`text` (anything, made a string) with every secret, in every form above, replaced by `***`."""
        text = str(text)
        spans = self.spans(text)
        if not spans:
            return text
        pieces, at = [], 0
        for lo, hi in sorted(spans):
            if hi > at:
                pieces += [text[at : max(lo, at)], MASK]
                at = hi
        pieces.append(text[at:])
        return "".join(pieces)

    def found_in(self, data: bytes | str) -> bool:
        """Whether raw bytes or text hold a secret in any form (a fast check before scrubbing a parsed document)."""
        return bool(self.spans(data))

    def scrub_data(self, value: Any) -> Any:
        """A parsed JSON document with every string (keys included) scrubbed."""
        if isinstance(value, str):
            return self.scrub(value)
        if isinstance(value, dict):
            return {self.scrub(k) if isinstance(k, str) else k: self.scrub_data(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.scrub_data(v) for v in value]
        return value


SECRETS = Registry()  # the process's: every secret pollwatch has loaded
register = SECRETS.register
scrub = SECRETS.scrub
found_in = SECRETS.found_in
scrub_data = SECRETS.scrub_data
