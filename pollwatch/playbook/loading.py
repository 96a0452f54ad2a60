"""Loading playbooks: safe YAML with line numbers and size limits, a watch merged over its template, every error
as `file:line: field: message`, and finding a watch by name."""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import stat
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    ValidationError,
)

from pollwatch.playbook.checks import LineMap, _cross_checks, _where
from pollwatch.playbook.fields import PlaybookError
from pollwatch.playbook.paths import PLAYBOOKS_DIR
from pollwatch.playbook.watch import Playbook, Watch

# --- loading ---------------------------------------------------------------------------------

MAX_YAML_NODES = 100_000  # a real playbook has a few hundred
MAX_FILE_BYTES = 1 << 20  # the template is 4 KB, a 200-provider watch about 40 KB
# Limits on a playbook's strings (docs/playbooks.md): names and codes end up in Slack, file names,
# store columns and every simulated observation; longer free text has its own keys.
MAX_KEY = 100
MAX_NAME = 100  # name, code, and any other short value
MAX_TEXT = 2000  # description, urls, expect_contains, why, base_url, transfer_url
_LONG_TEXT_KEYS = {
    "description",
    "urls",
    "expect_contains",
    "why",
    "base_url",
    "transfer_url",
    "resolver",
    "domains",
    "options",
}


def _string_problem(path: Path, line: int, p: tuple[Any, ...], value: str, is_key: bool) -> str | None:
    """A NUL (PostgreSQL cannot store it) or a string over its limit, as `file:line: field: message`."""
    field = ".".join(str(x) for x in p) or "(top level)"
    if "\x00" in value:
        return f"{path}:{line}: {field}: contains a NUL character (\\0), which the store cannot keep"
    limit = (
        MAX_KEY if is_key else (MAX_TEXT if any(k in _LONG_TEXT_KEYS for k in p if isinstance(k, str)) else MAX_NAME)
    )
    if len(value) > limit:
        what = "key" if is_key else "value"
        return f"{path}:{line}: {field}: {what} is {len(value)} characters long; at most {limit} (docs/playbooks.md)"
    return None


def _read(path: Path) -> bytes:
    """A playbook file's bytes, up to `MAX_FILE_BYTES`. Only a regular file is read: a FIFO, a device or a directory
    (a `*.yaml` symlink to /dev/zero in a watch directory) is refused, never read without end or waited on."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO opens without waiting for a writer
    except FileNotFoundError:
        raise PlaybookError([f"{path}: file not found"]) from None
    except OSError as exc:
        raise PlaybookError([f"{path}: cannot read: {exc.strerror or exc}"]) from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise PlaybookError([f"{path}: not a regular file (a directory, a device or a pipe); a playbook is one"])
    with os.fdopen(fd, "rb") as f:
        data = f.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise PlaybookError(
            [f"{path}:1: the file is larger than {MAX_FILE_BYTES // 1024} KB; a playbook takes a few KB"]
        )
    return data


def _load_yaml(path: Path) -> tuple[Any, LineMap]:
    """Safe-load YAML and remember the file:line of every key and list item."""
    try:
        text = _read(path).decode("utf-8")
    except FileNotFoundError:
        raise PlaybookError([f"{path}: file not found"]) from None
    except UnicodeDecodeError as exc:
        line = exc.object[: exc.start].count(b"\n") + 1
        raise PlaybookError([f"{path}:{line}: not UTF-8 (byte 0x{exc.object[exc.start]:02x})"]) from None
    except OSError as exc:
        raise PlaybookError([f"{path}: cannot read: {exc.strerror or exc}"]) from None
    for number, line in enumerate(text.splitlines(), 1):
        indent = line[: len(line) - len(line.lstrip(" \t"))]
        if "\t" in indent and line.strip():
            raise PlaybookError(
                [
                    f"{path}:{number}: a tab in the indentation: YAML indents with spaces only; replace the tab "
                    "with spaces (two per level, as in the template)"
                ]
            )
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise PlaybookError([f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}"]) from None
    lines: LineMap = {}
    budget = [MAX_YAML_NODES]
    too_long: list[str] = []

    def walk(n: Any, p: tuple[Any, ...]) -> None:
        budget[0] -= 1
        if budget[0] < 0:  # aliases can make a small file expand to billions of nodes ("billion laughs")
            raise PlaybookError(
                [
                    f"{path}:1: the document expands to more than {MAX_YAML_NODES} values "
                    "(YAML aliases repeating aliases?); write the values out"
                ]
            )
        if isinstance(n, yaml.MappingNode):
            for k, v in n.value:
                key = k.value
                lines[p + (key,)] = (str(path), k.start_mark.line + 1)
                if isinstance(key, str) and (
                    bad := _string_problem(path, k.start_mark.line + 1, p + (key[:40],), key, True)
                ):
                    too_long.append(bad)
                    continue
                walk(v, p + (key,))
        elif isinstance(n, yaml.SequenceNode):
            for i, v in enumerate(n.value):
                lines[p + (i,)] = (str(path), v.start_mark.line + 1)
                walk(v, p + (i,))
        elif isinstance(n, yaml.ScalarNode) and isinstance(n.value, str) and n.tag == "tag:yaml.org,2002:str":
            if bad := _string_problem(path, n.start_mark.line + 1, p, n.value, False):
                too_long.append(bad)

    if node is not None:
        walk(node, ())
    if too_long:
        raise PlaybookError(too_long[:20])
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:  # pragma: no cover - compose already parsed it
        raise PlaybookError([f"{path}: not valid YAML: {exc}"]) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise PlaybookError(
            [f"{path}:1: expected a mapping of playbook fields at the top level, got {type(data).__name__}"]
        )
    return data, lines


def _merge(base: Any, over: Any) -> Any:
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for k, v in over.items():
            out[k] = _merge(base[k], v) if k in base else v
        return out
    return copy.deepcopy(over)


_DATE_ERRORS = ("date_from_datetime_parsing", "date_parsing", "date_type", "date_from_datetime_inexact")


def _problems(exc: ValidationError, lines: LineMap, fallback: str) -> list[str]:
    problems = []
    for err in exc.errors():
        loc = tuple(x for x in err["loc"] if not (isinstance(x, str) and x.startswith("function-")))
        field = ".".join(str(x) for x in loc) or "(top level)"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key (check its spelling; allowed keys are in docs/playbooks.md)"
        elif err["type"] == "missing":
            msg = "required field is missing"
        elif err["type"] in _DATE_ERRORS:
            msg = f"expected a date YYYY-MM-DD (e.g. 2019-06-09), got {err.get('input')!r}"
        msg = msg.removeprefix("Value error, ")
        problems.append(f"{_where(lines, loc, fallback)}: {field}: {msg}")
    return problems


def _resolve_template(name: str, relative_to: Path) -> Path:
    candidates = [relative_to.parent / name, PLAYBOOKS_DIR / name, PLAYBOOKS_DIR / f"{name}.yaml"]
    for c in candidates:
        if c.is_file():
            return c
    return candidates[-1]


def load_playbook(path: str | Path) -> Playbook | Watch:
    """Load a template or a watch file; a watch is merged over the template it names."""
    path = Path(path)
    try:
        return _load_playbook(path)
    except RecursionError:  # a YAML alias that contains itself, or absurd nesting
        raise PlaybookError(
            [f"{path}:1: the document refers to itself (recursive YAML alias) or is nested too deeply"]
        ) from None


def _load_playbook(path: Path) -> Playbook | Watch:
    data, lines = _load_yaml(path)
    raw = _read(path)
    template_name = data.get("template")
    merged, merged_lines = data, dict(lines)
    digest = hashlib.sha256(raw)
    if template_name is not None:
        if not isinstance(template_name, str):
            f, ln = lines.get(("template",), (str(path), 1))
            raise PlaybookError([f"{f}:{ln}: template: expected the template's file name, e.g. rapid-response.yaml"])
        tpath = _resolve_template(template_name, path)
        if not tpath.is_file():
            f, ln = lines.get(("template",), (str(path), 1))
            raise PlaybookError(
                [f"{f}:{ln}: template: no template {template_name!r} next to the watch or in {PLAYBOOKS_DIR}"]
            )
        tdata, tlines = _load_yaml(tpath)
        if "template" in tdata:
            f, ln = tlines[("template",)]
            raise PlaybookError([f"{f}:{ln}: template: a template cannot itself name a template"])
        digest.update(_read(tpath))
        merged = _merge(tdata, data)
        merged_lines = {**tlines, **lines}
    is_watch = "country" in data or "election_date" in data
    model = Watch if is_watch else Playbook
    try:
        pb = model.model_validate(merged)
    except ValidationError as exc:
        raise PlaybookError(_problems(exc, merged_lines, str(path))) from None
    problems, warnings = _cross_checks(pb, merged_lines, str(path))
    if problems:
        raise PlaybookError(problems)
    pb.warnings = warnings
    if isinstance(pb, Watch):
        pb.source_file = str(path)
        pb.content_hash = digest.hexdigest()
    return pb


def load_watch(path: str | Path) -> Watch:
    """Load a watch file (it must name a country and an election date)."""
    pb = load_playbook(path)
    if not isinstance(pb, Watch):
        raise PlaybookError([f"{path}:1: a watch needs 'country' and 'election_date' (this looks like a template)"])
    return pb


_WATCH_CACHE: dict[tuple[str, ...], Watch] = {}


def load_watch_cached(path: str | Path) -> Watch:
    """`load_watch`, remembered while the watch file and its template have the same content.

    A tick loads its watch, and the audit hooks load it again for its hash; parsing a
    200-provider watch with line numbers takes about a second, reading the files takes nothing.
    Each call returns its own (shallow) copy.
    """
    p = Path(path).resolve()
    raw = _read(p)
    key = [str(p), hashlib.sha256(raw).hexdigest()]
    template = re.search(rb"^template:[ \t]*[\"']?([^\"'\s#]+)", raw, re.M)
    if template:
        t = _resolve_template(template.group(1).decode("utf-8", "replace"), p)
        key.append(hashlib.sha256(t.read_bytes()).hexdigest() if t.is_file() else "-")
    cached = _WATCH_CACHE.get(tuple(key))
    if cached is None:
        cached = _disk_cached(key, path)
        if len(_WATCH_CACHE) > 1024:  # a batch of every country's watch: 249
            _WATCH_CACHE.clear()
        _WATCH_CACHE[tuple(key)] = cached
    return cached.model_copy()


def _disk_cached(key: list[str], path: str | Path) -> Watch:
    """`load_watch`, validated once per content and pollwatch version on disk (`$POLLWATCH_HOME/cache/watches/`):
    a process worker starts a fresh Python per run, and a batch run loads every country's watch (YAML with line
    numbers: about 20 ms each, 0.6 ms from the cache). The cache holds the validated model as JSON, read back
    through validation; anything unreadable is parsed again."""
    from pollwatch import __version__
    from pollwatch.settings import get_settings

    digest = hashlib.sha256(json.dumps([__version__, *key]).encode()).hexdigest()[:40]
    file = get_settings().home / "cache" / "watches" / f"{digest}.json"
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
        w = Watch.model_validate(data["watch"])
        w.source_file, w.content_hash = data["source_file"], data["content_hash"]
        return w
    except (OSError, ValueError, KeyError, TypeError):
        pass
    w = load_watch(path)
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        tmp = file.with_name(f".{file.name}.{os.getpid()}.tmp")
        doc = {"watch": w.model_dump(mode="json"), "source_file": w.source_file, "content_hash": w.content_hash}
        tmp.write_text(json.dumps(doc), encoding="utf-8")
        tmp.replace(file)
    except OSError:
        pass  # a read-only home only costs the parse next time
    return w


def find_watch(name_or_path: str | Path) -> Path:
    """Accept a path or a bare watch name (`kz-2019-presidential`) from playbooks/watches/."""
    p = Path(name_or_path)
    if p.is_file():
        return p
    for cand in (PLAYBOOKS_DIR / "watches" / f"{name_or_path}.yaml", PLAYBOOKS_DIR / "watches" / str(name_or_path)):
        if cand.is_file():
            return cand
    raise PlaybookError(
        [f"{name_or_path}: no such watch file (give a path, or a name from {PLAYBOOKS_DIR / 'watches'})"]
    )
