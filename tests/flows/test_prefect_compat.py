"""The Prefect internals `pollwatch serve` reads (pollwatch.flows.prefect_compat) exist in the installed Prefect.

When a Prefect upgrade renames one of them, this fails first (before `serve` silently stops draining on
SIGTERM), naming what moved."""

import inspect

from prefect.runner import Runner

from pollwatch.flows import prefect_compat


def test_the_runner_still_has_what_serve_reads():
    runner = Runner(name="pollwatch-compat-check")
    missing = [name for name in prefect_compat.RUNNER_INTERNALS if not hasattr(runner, name)]
    assert not missing, f"Prefect's Runner no longer has {missing}: update pollwatch/flows/prefect_compat.py"
    assert callable(runner._process_manager.flow_run_count)
    assert runner._process_manager.flow_run_count() == prefect_compat.run_processes(runner) == 0
    assert prefect_compat.runner_serving(runner) is False
    for method in ("handle_sigterm", "execute_in_background", "astop"):
        assert callable(getattr(runner, method, None)), f"Runner.{method} is gone"


def test_the_scheduled_run_poller_can_still_be_stopped():
    from prefect.runner._scheduled_run_poller import ScheduledRunPoller

    assert "stopping" in inspect.getsource(ScheduledRunPoller.__init__), "ScheduledRunPoller has no `stopping` flag"
    assert "_scheduled_run_poller" in inspect.getsource(Runner), "Runner keeps its poller under another name"


def test_the_local_api_server_class_is_still_there():
    server = prefect_compat.local_api_server()
    assert callable(server.start) and callable(server.stop)
    assert "api_url" in dir(type(server)) or hasattr(server, "api_url")
