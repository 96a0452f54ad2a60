"""What a hostile or careless server does with a secret it was sent, and how tests look for it afterwards.

`encodings(secret)` lists the forms a server echoes a credential in (raw, URL-encoded once and
twice, JSON-escaped, HTML entities, base64 and base64url, inside a Basic credential, hex);
`echo_text(secrets)` is an error message carrying each secret in all of them, as the fakes
(tests/fakes/observatories.py, tests/fakes/slack_api.py) send with their "echo" faults.
`leaks(blob, canaries)` says which canaries appear in a blob in any of those forms, written on
its own (not with pollwatch.redact) so that a gap in pollwatch's scrubbing cannot hide itself.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from urllib.parse import quote, quote_plus


def encodings(secret: str) -> dict[str, str]:
    """The secret as a server might echo it, by name of the encoding."""
    raw = secret.encode()
    return {
        "raw": secret,
        "bearer": f"Bearer {secret}",
        "url": quote(secret, safe=""),
        "url_plus": quote_plus(secret),
        "url_lower_hex": quote(secret, safe="").lower(),
        "url_twice": quote(quote(secret, safe=""), safe=""),
        "json": json.dumps(secret)[1:-1],
        "json_ascii": "".join(f"\\u{ord(c):04x}" for c in secret),
        "html": "".join(f"&#{ord(c)};" for c in secret),
        "base64": base64.b64encode(raw).decode(),
        "base64url": base64.urlsafe_b64encode(raw).decode().rstrip("="),
        "basic": base64.b64encode(b"api:" + raw).decode(),
        "hex": raw.hex(),
    }


def echo_text(secrets: list[str]) -> str:
    """An error message quoting every secret in every encoding (one server, many careless layers)."""
    return "; ".join(f"bad credential ({name}) {form}" for s in secrets for name, form in encodings(s).items())


def _base64_pieces(raw: bytes) -> list[bytes]:
    """What every base64 text containing `raw` contains, whatever the bytes before it."""
    out = []
    for k in range(3):
        first, last = -(-8 * k // 6), 8 * (k + len(raw)) // 6
        for enc in (base64.b64encode, base64.urlsafe_b64encode):
            out.append(enc(b"\0" * k + raw)[first:last])
    return out


def leaks(blob: bytes | str, canaries: tuple[str, ...] | list[str]) -> list[str]:
    """The canaries found in `blob`, raw or in any form `encodings` makes (case-insensitively where the form allows)."""
    data = blob.encode("utf-8", "replace") if isinstance(blob, str) else bytes(blob)
    data = re.sub(rb"\\+", rb"\\", data)  # JSON quoted in JSON doubles its escapes: `\\u0041` is still an `A`
    low = data.lower()
    found = []
    for c in canaries:
        forms = [f.encode() for name, f in encodings(c).items() if name not in ("basic", "bearer")]
        hit = any(f.lower() in low for f in forms) or any(p in data for p in _base64_pieces(c.encode()))
        if not hit:  # the canary's hex inside a longer hex string, in either case
            hit = binascii.hexlify(c.encode()) in low
        if hit:
            found.append(c)
    return found
