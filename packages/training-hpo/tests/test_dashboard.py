"""optuna-dashboard reads our studies: its WSGI app serves a finished study's storage on a real HTTP server, and its
JSON API gives back the trials, their intermediate values and our trial attributes."""

from __future__ import annotations

import json
import threading
import urllib.request
import wsgiref.simple_server
from collections.abc import Iterator
from typing import Any

import pytest

optuna_dashboard = pytest.importorskip("optuna_dashboard", reason='needs pip install "training-hpo[dashboard]"')


class _QuietHandler(wsgiref.simple_server.WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """No access log on stderr."""


@pytest.fixture
def dashboard(swept: tuple) -> Iterator[str]:
    """The base URL of optuna-dashboard serving the shared sweep's SQLite storage, as `optuna-dashboard URL` does."""
    _, study_dir = swept
    app = optuna_dashboard.wsgi(f"sqlite:///{(study_dir / 'study.db').resolve()}")
    server = wsgiref.simple_server.make_server("127.0.0.1", 0, app, handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=60) as response:
        assert response.status == 200
        return json.loads(response.read())


@pytest.mark.slow
def test_the_dashboard_shows_our_trials_intermediate_values_and_attributes(swept: tuple, dashboard: str) -> None:
    study, _ = swept
    summaries = get_json(f"{dashboard}/api/studies")["study_summaries"]
    assert [summary["study_name"] for summary in summaries] == [study.study_name]

    detail = get_json(f"{dashboard}/api/studies/{summaries[0]['study_id']}?after=0")
    trials = {trial["number"]: trial for trial in detail["trials"]}
    assert sorted(trials) == [trial.number for trial in study.trials]
    for ours in study.trials:
        shown = trials[ours.number]
        assert shown["state"] == ours.state.name.capitalize() == "Complete"
        assert [(point["step"], point["value"]) for point in shown["intermediate_values"]] == [
            (step, pytest.approx(value)) for step, value in sorted(ours.intermediate_values.items())
        ]
        attributes = {item["key"]: item["value"] for item in shown["user_attrs"]}  # numbers as text, others JSON
        assert json.loads(attributes["hyperparameters"]) == ours.user_attrs["hyperparameters"]
        assert json.loads(attributes["fold_values"]) == pytest.approx(ours.user_attrs["fold_values"])
        assert float(attributes["cv_std"]) == pytest.approx(ours.user_attrs["cv_std"])
        assert attributes["device"] == ours.user_attrs["device"]
    assert "sweep" in {item["key"] for item in detail["user_attrs"]}  # the study record (config, settings, data)

    with urllib.request.urlopen(f"{dashboard}/dashboard/studies/{summaries[0]['study_id']}", timeout=60) as page:
        assert page.status == 200 and b"<html" in page.read().lower()
