"""Outside text leaving pollwatch: made safe for the sink it goes to, and output files that fail cleanly.

Names in a watch, observatories' error bodies and imported files come from outside. Each sink
has one helper here, used wherever that sink is written (Slack mrkdwn has its own, `esc` in
pollwatch.notify.render.message; HTML is escaped by pollwatch.report):

- `terminal_safe`: the console. Control characters (C0 but tab and newline, DEL, C1) and the
  Unicode bidi controls are removed, so a name cannot move the cursor, recolour the terminal,
  rewrite the line before it or reorder what the reader sees.
- `csv_cell`: spreadsheets. A cell starting with `=`, `+`, `-`, `@`, tab or carriage return
  (OWASP's CSV injection list, and their full-width forms) is prefixed with `'` so it stays text;
  a carriage return inside a cell becomes a line feed (which the csv module quotes).
- `output_file` / `OutputError`: a file pollwatch was asked to write (`-o`, `--out`) that cannot
  be written (a missing folder, a directory, a full disk, no permission) is one clear line, not
  a traceback.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

# C0 except \t and \n, DEL, C1; ALM, LRM/RLM, the embeddings/overrides and the isolates
_TERMINAL_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def terminal_safe(text: object) -> str:
    """`text` without the characters a terminal would act on instead of showing (see the module docstring)."""
    return _TERMINAL_UNSAFE.sub("", str(text))


def csv_cell(value: object) -> str:
    """A CSV cell a spreadsheet will show as text, never evaluate as a formula."""
    text = "" if value is None else str(value)
    if text.startswith(_FORMULA_START):
        text = "'" + text
    # a bare CR is not quoted by the csv module when lines end in LF, and readers split the row there
    return text.replace("\r\n", "\n").replace("\r", "\n")


class OutputError(OSError):
    """An output file could not be written; its message is one line naming the file and why."""


def describe_os_error(path: str | Path, exc: OSError) -> str:
    """`reports/x.html: cannot write: No such file or directory (the folder reports does not exist)`."""
    why = exc.strerror or type(exc).__name__
    p = Path(path)
    if isinstance(exc, IsADirectoryError) or p.is_dir():
        hint = "it is a directory; give a file name"
    elif isinstance(exc, FileNotFoundError) and not p.parent.exists():
        hint = f"the folder {p.parent} does not exist"
    elif isinstance(exc, PermissionError):
        hint = "no permission to write there"
    else:
        hint = ""
    return f"{path}: cannot write: {why}" + (f" ({hint})" if hint else "")


@contextmanager
def output_file(path: str | Path, mode: str = "w", *, newline: str | None = None) -> Iterator[IO]:
    """Open `path` for writing; any OSError while opening, writing or closing becomes an `OutputError`."""
    try:
        fh = open(path, mode, encoding=None if "b" in mode else "utf-8", newline=newline)
    except OSError as exc:
        raise OutputError(describe_os_error(path, exc)) from None
    try:
        with fh:
            yield fh
    except OutputError:
        raise
    except OSError as exc:  # /dev/full and a full disk fail on write or on close
        raise OutputError(describe_os_error(path, exc)) from None


def make_parent(path: str | Path) -> None:
    """Create the folder `path` goes into (an `OutputError` when that is impossible)."""
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(describe_os_error(path, exc)) from None


def write_output(path: str | Path, text: str) -> Path:
    """Write a whole text file pollwatch was asked for (its folder created); `OutputError` if it cannot."""
    make_parent(path)
    with output_file(path) as fh:
        fh.write(text)
    return Path(path)


def safe_file_name(name: str, max_len: int = 100) -> str:
    """`name` as one file name: no separators, no `..`, no leading dot, only [A-Za-z0-9._-]."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip(".-")[:max_len]
    return cleaned or "watch"
