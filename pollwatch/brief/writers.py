"""The statement written out: Markdown (charts as PNG files beside it) or one self-contained HTML page (charts
inline), every piece of outside text escaped for its format; the draft's SHA-256 goes into the audit log."""

from __future__ import annotations

import base64
import html
import re
from datetime import datetime
from pathlib import Path
from typing import Literal

from pollwatch import store
from pollwatch.brief.data import BriefData, collect
from pollwatch.brief.sentences import clean
from pollwatch.brief.statement import Block, statement
from pollwatch.models import Incident
from pollwatch.playbook import Watch

Format = Literal["md", "html"]

_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>#|~])")


def _md(s: str) -> str:
    """Text as Markdown shows it: markup characters escaped, and a line break in it (only outside text has one) a
    space, so that it cannot start a list item, a heading underline or a paragraph of its own."""
    return _MD_SPECIAL.sub(r"\\\1", clean(s).replace("\n", " "))


def render_markdown(blocks: list[Block], charts: dict[str, str] | None = None) -> str:
    """Markdown; `charts` maps incident ids to the chart image's path or URL (missing: no chart line)."""
    out: list[str] = []
    for b in blocks:
        if b.kind == "h1":
            out += [f"# {_md(b.text)}", ""]
        elif b.kind == "h2":
            out += [f"## {_md(b.text)}", ""]
        elif b.kind == "h3":
            out += [f"### {_md(b.text)}", ""]
        elif b.kind == "p":
            out += [_md(b.text), ""]
        elif b.kind == "ul":
            out += [_md(b.text)] if b.text else []
            out += [f"- {_md(i)}" for i in b.items] + [""]
        elif b.kind == "chart":
            ref = (charts or {}).get(b.incident_id or "")
            if ref:
                out += [f"![signals against their baseline, incident {b.incident_id}]({ref})", ""]
        elif b.kind == "meta":
            out += [f"*{_md(b.text)}*", ""]
    return "\n".join(out).rstrip() + "\n"


def _e(s: str) -> str:
    return html.escape(clean(s), quote=True)


def render_html(blocks: list[Block], charts: dict[str, bytes] | None = None) -> str:
    """One self-contained HTML page (charts inline as PNG data, no scripts, nothing loaded from elsewhere)."""
    body: list[str] = []
    title = next((b.text for b in blocks if b.kind == "h1"), "pollwatch statement")
    for b in blocks:
        if b.kind in ("h1", "h2", "h3"):
            body.append(f"<{b.kind}>{_e(b.text)}</{b.kind}>")
        elif b.kind == "p":
            body.append(f"<p>{_e(b.text)}</p>")
        elif b.kind == "ul":
            body.append(
                (f"<p>{_e(b.text)}</p>" if b.text else "")
                + "<ul>"
                + "".join(f"<li>{_e(i)}</li>" for i in b.items)
                + "</ul>"
            )
        elif b.kind == "chart":
            png = (charts or {}).get(b.incident_id or "")
            if png:
                data = base64.b64encode(png).decode()
                body.append(
                    f"<img alt='signals against their baseline, incident {_e(b.incident_id or '')}' "
                    f"src='data:image/png;base64,{data}'>"
                )
        elif b.kind == "meta":
            body.append(f"<p class='meta'>{_e(b.text)}</p>")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">\n'
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; "
        'img-src data:">\n'
        f"<title>{_e(title)}</title><style>body{{font-family:Georgia,serif;max-width:46em;margin:2em "
        "auto;line-height:1.5}"
        "img{max-width:100%}.meta{color:#666;font-size:.85em}</style></head>\n<body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )


def _chart_png(data: BriefData, inc: Incident) -> bytes | None:
    from pollwatch.charts import incident_chart

    anoms = [data.anomalies[a] for a in inc.anomaly_ids if a in data.anomalies]
    return incident_chart(data.watch, inc, anoms, data.observations.get(inc.id, []))


def render(data: BriefData, fmt: Format = "md", out: str | Path | None = None) -> str:
    """The draft in `fmt`. Markdown charts are written as PNG files beside `out` (none without `out`);
    HTML carries them inline."""
    blocks = statement(data)
    if fmt == "html":
        pngs = {i.id: p for i in data.incidents if (p := _chart_png(data, i)) is not None}
        return render_html(blocks, pngs)
    refs: dict[str, str] = {}
    if out is not None:
        out = Path(out)
        folder = out.with_name(out.stem + "-charts")
        for inc in data.incidents:
            png = _chart_png(data, inc)
            if png is None:
                continue
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"incident-{inc.id}.png"
            path.write_bytes(png)
            refs[inc.id] = f"{folder.name}/{path.name}"
    return render_markdown(blocks, refs)


def write_brief(
    watch: Watch,
    out: str | Path,
    fmt: Format = "md",
    *,
    incident: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    url: str | None = None,
) -> BriefData:
    """Collect from the store, write the draft to `out`, and record its SHA-256 in the audit log."""
    from pollwatch import audit

    with store.session_scope(url) as s:
        data = collect(s, watch, incident=incident, since=since, until=until)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(data, fmt, out), encoding="utf-8")
    with store.session_scope(url) as s:
        audit.record_report(
            s,
            watch=watch.name,
            path=out,
            what=f"brief-{fmt}",
            params={"incident": incident, "from": since, "until": until},
        )
    return data


def incident_statement(watch: Watch, incident_id: str, *, url: str | None = None) -> str:
    """The Markdown draft for one incident (no charts): what a Slack thread or button shows."""
    with store.session_scope(url) as s:
        data = collect(s, watch, incident=incident_id)
    return render_markdown(statement(data))
