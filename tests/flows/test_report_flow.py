"""The report flow under the Prefect test harness: HTML written, artifacts published, run audited."""

from __future__ import annotations

import pytest

from pollwatch import audit, store
from tests.fakes.reports import report_template, stored  # noqa: F401 (fixtures)


@pytest.mark.prefect
def test_report_flow_publishes_artifacts_and_audits_the_run(prefect_harness, stored, tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    from pollwatch.flows.report import report

    out = tmp_path / "report.html"
    summary = report("kz-2019-presidential", since=stored["since"], until=stored["until"], out=str(out))
    assert summary["incidents"] == 6 and summary["audit_ok"] and out.exists()
    with get_client(sync_client=True) as client:
        arts = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=["report-kz-2019-presidential", "report-incidents-kz-2019-presidential"])
            )
        )
    kinds = {a.key: a.type for a in arts}
    assert kinds == {"report-kz-2019-presidential": "markdown", "report-incidents-kz-2019-presidential": "table"}
    md = next(a for a in arts if a.type == "markdown").data
    assert "Nationwide internet outage" in md and "verified intact" in md
    with store.session_scope() as s:
        runs = [r for r in audit.runs(s, "kz-2019-presidential") if r["flow"] == "report"]
        assert len(runs) == 1 and runs[0]["state"] == "Completed" and runs[0]["flow_run_id"]
        assert runs[0]["parameters"]["watch"] == "kz-2019-presidential"
        assert runs[0]["playbook_hash"] and audit.verify(s).ok
        assert audit.entries(s, kind="report")[-1].payload["sha256"] == summary["sha256"]
