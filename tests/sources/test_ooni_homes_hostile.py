"""OONI's discovery of where a batch's networks are measured (pollwatch/sources/ooni_homes.py) against a broken
disk and a server that never answers: a kept answer that is corrupt, deeply nested, of the wrong types, huge, or
replaced by a directory, a FIFO or a link to a device costs one request again, never the batch's data; a discovery
that hangs is cut at the tick's deadline."""

from __future__ import annotations

import asyncio
import os
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.sources.test_sources_ooni_homes import ROAMING, T0, T1, _config, _discoveries, _whatsapp, batch  # noqa: F401

from pollwatch.sources import make_source
from pollwatch.sources.ooni_homes import plan_requests


def _homes(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "cache" / "ooni").glob("homes-*.json"))


def _spoil(path: Path, how: str) -> None:
    path.unlink()
    if how == "directory":
        path.mkdir()
    elif how == "fifo":
        os.mkfifo(path)  # a plain open() would wait for a writer forever
    elif how == "dev_zero":
        path.symlink_to("/dev/zero")  # endless bytes
    elif how == "huge":
        with open(path, "wb") as f:
            f.truncate(64 * 2**20)
    else:
        path.write_text(
            {
                "deep": '{"measured": ' + "[" * 100_000 + "]" * 100_000 + "}",
                "wrong_types": '{"measured": {"65003": "UZ", "x": 1}}',
                "not_json": "\x00\xff{",
                "list": "[1, 2]",
            }[how]
        )


def _collect(watches, url, deadline=None):
    src = make_source("ooni", watches[0], config=_config(url))  # a fresh source: what is kept is on disk
    return asyncio.run(src.collect_many([(w, T0, T1) for w in watches], deadline))


@pytest.mark.parametrize("how", ["deep", "wrong_types", "not_json", "list", "directory", "fifo", "dev_zero", "huge"])
def test_a_spoiled_discovery_file_costs_a_request_not_the_batchs_data(batch, tmp_path, how):  # noqa: F811
    watches, ooni = batch
    clean = _collect(watches, ooni.url)
    (kept,) = _homes(tmp_path)
    _spoil(kept, how)
    began = time.monotonic()
    spoiled = _collect(watches, ooni.url)
    assert time.monotonic() - began < 20
    assert _discoveries(ooni) == 2  # asked again
    for a, b in zip(clean, spoiled):
        assert b.gaps == [] and len(b.observations) == len(a.observations)
    assert all(o.value == 0.0 for o in _whatsapp(spoiled[0], ROAMING))  # 65003 still asked with UZ alone


def test_a_directory_among_old_discovery_files_does_not_stop_the_batch(batch, tmp_path):  # noqa: F811
    watches, ooni = batch
    old = tmp_path / "cache" / "ooni" / "homes-2000-01-01-0123456789abcdef.json"
    old.mkdir(parents=True)
    results = _collect(watches, ooni.url)
    assert all(r.gaps == [] and r.observations for r in results)
    assert _discoveries(ooni) == 1 and len(_homes(tmp_path)) == 2  # the answer kept; the directory left alone
    _collect(watches, ooni.url)
    assert _discoveries(ooni) == 1  # and read back


def test_a_discovery_that_never_answers_ends_at_the_ticks_deadline(batch):  # noqa: F811
    watches, ooni = batch
    ooni.hang_seconds = 30.0
    ooni.fail("hang", query={"axis_x": "probe_cc"})
    began = time.monotonic()
    results = _collect(watches, ooni.url, deadline=datetime.now(timezone.utc) + timedelta(seconds=0.5))
    took = time.monotonic() - began
    assert took < 1.5, took  # the client's own timeout is 2 s
    for r in results:
        assert r.gaps and not r.observations
        assert any("deadline" in n.message for n in r.notices)


@pytest.mark.parametrize("how", ["deep", "fifo", "dev_zero", "directory"])
def test_spoiled_hour_cache_files_cost_requests_not_the_batchs_data(batch, tmp_path, how):  # noqa: F811
    """The hour cache next to the discovery files (ooni.py `HourCache`) is read the same way."""
    watches, ooni = batch
    clean = _collect(watches, ooni.url)
    hours = [p for p in (tmp_path / "cache" / "ooni").glob("*.json") if not p.name.startswith("homes-")]
    assert hours
    for p in hours:
        _spoil(p, how)
    asked = len(ooni.requests)
    spoiled = _collect(watches, ooni.url)
    assert len(ooni.requests) > asked  # asked again
    for a, b in zip(clean, spoiled):
        assert b.gaps == [] and len(b.observations) == len(a.observations)


# --- whatever discovery answers, a batched request never sums another country's tests into a watch's network ----

countries = st.sampled_from(["UZ", "TJ", "KG", "KZ"])
garbage_cc = st.one_of(countries, st.sampled_from(["", "uz", "../x", "U", "UZB", "\x00", "ÅÅ"]))
asns = st.integers(min_value=1, max_value=8)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(
    watches=st.lists(st.tuples(countries, st.lists(asns, min_size=1, max_size=4, unique=True)), min_size=1, max_size=5),
    measured=st.one_of(
        st.none(),
        st.dictionaries(st.one_of(asns, st.integers(min_value=2**40, max_value=2**70)), st.sets(garbage_cc)),
    ),
    per_request=st.integers(min_value=1, max_value=5),
)
def test_a_batched_request_never_mixes_a_networks_countries(watches, measured, per_request):
    members = [
        (SimpleNamespace(country=cc, watch=SimpleNamespace(asns=nets)), SimpleNamespace()) for cc, nets in watches
    ]
    plan = plan_requests(members, lambda w: w.asns, measured, per_request)
    owners: dict[int, set[str]] = {}
    for cc, nets in watches:
        for a in nets:
            owners.setdefault(a, set()).add(cc)
    asked: dict[tuple[int, int], int] = {}  # (member, network) -> requests that serve it
    for served, probe_cc, group in plan:
        listed = set(probe_cc.split(","))
        assert 1 <= len(group) <= per_request
        assert listed == {r.country for r, _ in served}
        for a in group:
            if len(listed) > 1:
                assert measured is not None  # unknown: every country alone
                assert len(owners[a] & listed) == 1  # no two countries' watches share it in one request
                assert not (measured.get(a, set()) & listed) - owners[a]  # measured in no other listed country
        for i, (r, _) in enumerate(members):
            if any(r is s for s, _ in served):
                for a in set(group) & set(r.watch.asns):
                    asked[(i, a)] = asked.get((i, a), 0) + 1
    # every watch's network is asked, once, in a request whose countries include the watch's
    assert asked == {(i, a): 1 for i, (_, nets) in enumerate(watches) for a in nets}
