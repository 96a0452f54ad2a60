"""The audit chain: appends, verification, and tampering done directly in SQL."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import text

from pollwatch import audit, store

T0 = datetime(2019, 6, 9, 3, 0, tzinfo=timezone.utc)


def _fill(n: int = 8, url: str | None = None) -> None:
    with store.session_scope(url) as s:
        for i in range(n):
            audit.append(
                s,
                audit.AuditKind.observations,
                "kz",
                f"src{i % 3}",
                {"i": i, "value": i * 1.5, "when": T0 + timedelta(minutes=i), "tags": {"b", "a"}},
                at=T0 + timedelta(seconds=i),
            )


def _verify(head=None, url=None) -> audit.Verification:
    with store.session_scope(url) as s:
        return audit.verify(s, head)


def _sql(stmt: str, url: str | None = None, **params) -> None:
    with store.get_engine(url).begin() as conn:
        conn.execute(text(stmt), params)


def test_untouched_log_verifies_and_links():
    _fill(8)
    v = _verify()
    assert v.ok, v.problems
    assert v.entries == 8 and v.head_seq == 8
    with store.session_scope() as s:
        es = audit.entries(s)
    assert [e.seq for e in es] == list(range(1, 9))
    assert es[0].prev_hash == audit.GENESIS
    assert all(b.prev_hash == a.hash for a, b in zip(es, es[1:]))
    # payload is stored in canonical form: times as Z strings, sets sorted
    assert es[0].payload["when"] == "2019-06-09T03:00:00.000000Z"
    assert es[0].payload["tags"] == ["a", "b"]


def test_empty_log_verifies():
    v = _verify()
    assert v.ok and v.entries == 0
    with store.session_scope() as s:
        head = audit.export_head(s)
    assert head["seq"] == 0 and _verify(head).ok
    _fill(2)
    assert _verify(head).ok


def test_canonical_json_is_order_independent():
    assert audit.canonical_json({"b": 1, "a": [1, {"y": 2, "x": 1}]}) == audit.canonical_json(
        {"a": [1, {"x": 1, "y": 2}], "b": 1}
    )
    assert audit.canonical_json({"x": float("nan")}) == '{"x":null}'
    with pytest.raises(ValueError):
        audit.canonical_json({"t": datetime(2019, 1, 1)})


def test_the_canonical_form_is_pinned():
    """Every stored chain was hashed with this form: a change to it (RFC 8785 writes 1.0 as 1) breaks them all."""
    payload = {"severity": 1.0, "note": "Қазақстан", "z": [1, 2.5e-07, None], "a": {"y": True, "b": "x\n"}}
    assert (
        audit.canonical_json(payload)
        == '{"a":{"b":"x\\n","y":true},"note":"Қазақстан","severity":1.0,"z":[1,2.5e-07,null]}'
    )
    at = datetime(2019, 6, 9, 5, 0, tzinfo=timezone.utc)
    got = audit.entry_hash(7, at, "incident", "kz", "inc-1", payload, audit.GENESIS)
    assert got == "439d03dbd0d267ece459c7ee54b109d792c067e63a7d88ee35357f3b06ffdad2"


def test_altered_payload_is_reported_at_that_entry():
    _fill(8)
    _sql("UPDATE audit_entry SET payload = :p WHERE seq = 5", p=json.dumps({"i": 4, "value": 999.0}))
    v = _verify()
    assert not v.ok
    assert (v.first.seq, v.first.what) == (5, "altered")
    assert len(v.problems) == 1


def test_altered_kind_or_time_is_reported():
    _fill(6)
    _sql("UPDATE audit_entry SET kind = 'alert' WHERE seq = 2")
    _sql("UPDATE audit_entry SET time = '2020-01-01 00:00:00.000000' WHERE seq = 4")
    v = _verify()
    assert [(p.seq, p.what) for p in v.problems] == [(2, "altered"), (4, "altered")]


def test_rewritten_entry_with_recomputed_hash_breaks_the_next_link():
    _fill(6)
    with store.session_scope() as s:
        e = audit.entries(s)[2]  # seq 3
    forged = {"i": 2, "value": -1.0}
    h = audit.entry_hash(e.seq, e.time, e.kind, e.watch, e.subject, forged, e.prev_hash)
    _sql("UPDATE audit_entry SET payload = :p, hash = :h WHERE seq = 3", p=json.dumps(forged), h=h)
    v = _verify()
    assert (v.first.seq, v.first.what) == (3, "altered")


def test_deleted_entry_is_reported():
    _fill(8)
    _sql("DELETE FROM audit_entry WHERE seq = 4")
    v = _verify()
    assert (v.first.seq, v.first.what) == (4, "deleted")
    assert len(v.problems) == 1


def test_deleted_first_entry_is_reported():
    _fill(3)
    _sql("DELETE FROM audit_entry WHERE seq = 1")
    v = _verify()
    assert (v.first.seq, v.first.what) == (1, "deleted")


def test_deleted_and_renumbered_is_reported():
    _fill(6)
    _sql("DELETE FROM audit_entry WHERE seq = 3")
    for seq in (4, 5, 6):
        _sql("UPDATE audit_entry SET seq = :new WHERE seq = :old", new=seq - 1, old=seq)
    v = _verify()
    assert (v.first.seq, v.first.what) == (3, "deleted")


def test_swapped_entries_are_reported_as_reordered():
    _fill(8)
    _sql("UPDATE audit_entry SET seq = -1 WHERE seq = 3")
    _sql("UPDATE audit_entry SET seq = 3 WHERE seq = 6")
    _sql("UPDATE audit_entry SET seq = 6 WHERE seq = -1")
    v = _verify()
    assert (v.first.seq, v.first.what) == (3, "reordered")


def test_truncated_end_needs_the_exported_head(tmp_path):
    _fill(8)
    head_file = tmp_path / "head.json"
    with store.session_scope() as s:
        doc = audit.export_head(s, head_file)
    assert doc["seq"] == 8
    assert _verify(audit.load_head(head_file)).ok
    _sql("DELETE FROM audit_entry WHERE seq > 6")
    assert _verify().ok  # a shorter chain is still a valid chain...
    v = _verify(audit.load_head(head_file))  # ...but not one that reaches the exported head
    assert (v.first.seq, v.first.what) == (7, "truncated")


def test_rewritten_history_does_not_match_the_exported_head(tmp_path):
    _fill(4)
    with store.session_scope() as s:
        doc = audit.export_head(s)
    # Rewrite the whole chain consistently: verify alone cannot tell, the head can.
    with store.session_scope() as s:
        es = audit.entries(s)
    prev = audit.GENESIS
    for e in es:
        payload = {**e.payload, "value": 0.0}
        h = audit.entry_hash(e.seq, e.time, e.kind, e.watch, e.subject, payload, prev)
        _sql(
            "UPDATE audit_entry SET payload = :p, prev_hash = :ph, hash = :h WHERE seq = :s",
            p=json.dumps(payload),
            ph=prev,
            h=h,
            s=e.seq,
        )
        prev = h
    assert _verify().ok
    v = _verify(doc)
    assert not v.ok and v.first.seq == 4


def test_load_head_rejects_other_files(tmp_path):
    bad = tmp_path / "x.json"
    bad.write_text('{"seq": 1}')
    with pytest.raises(ValueError, match="not a pollwatch audit head"):
        audit.load_head(bad)
    with pytest.raises(ValueError, match="no such head file"):
        audit.load_head(tmp_path / "missing.json")


def test_append_rolls_back_with_the_data():
    with pytest.raises(RuntimeError):
        with store.session_scope() as s:
            audit.append(s, "run.start", "kz", "r1", {"x": 1})
            raise RuntimeError("stage failed")
    with store.session_scope() as s:
        assert audit.count(s) == 0


def test_concurrent_writers_keep_one_chain():
    _fill(1)
    errors: list[BaseException] = []

    def writer(k: int) -> None:
        try:
            for i in range(10):
                with store.session_scope() as s:
                    audit.append(s, "observations", "kz", f"w{k}", {"k": k, "i": i})
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    v = _verify()
    assert v.ok and v.entries == 41


def test_secrets_in_parameters_are_masked():
    with store.session_scope() as s:
        e = audit.record_run_start(
            s,
            watch="kz",
            flow_run_id="fr-1",
            flow="watch-tick",
            deployment=None,
            parameters={"watch": "kz", "slack_token": "xoxb-123", "tick": T0},
            playbook_hash="abc",
        )
    assert e.payload["parameters"] == {"watch": "kz", "slack_token": "***", "tick": "2019-06-09T03:00:00.000000Z"}
    assert e.payload["pollwatch_version"]


@pytest.mark.postgres
def test_postgres_chain_with_concurrent_writers(pg_url):
    _fill(3, pg_url)

    def writer(k: int) -> None:
        for i in range(5):
            with store.session_scope(pg_url) as s:
                audit.append(s, "observations", "kz", f"w{k}", {"k": k, "i": i})

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    v = _verify(url=pg_url)
    assert v.ok and v.entries == 23
    _sql("UPDATE audit_entry SET payload = CAST(:p AS json) WHERE seq = 7", url=pg_url, p=json.dumps({"x": 1}))
    v = _verify(url=pg_url)
    assert (v.first.seq, v.first.what) == (7, "altered")


def test_rolled_back_savepoint_does_not_leave_a_gap():
    _fill(2)
    with store.session_scope() as s:
        audit.append(s, "observations", "kz", "x", {"i": 1})
        nested = s.begin_nested()
        audit.append(s, "observations", "kz", "y", {"i": 2})
        nested.rollback()
        audit.append(s, "observations", "kz", "z", {"i": 3})
    v = _verify()
    assert v.ok and v.entries == 4
