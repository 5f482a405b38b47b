"""The Streamlit UI against a real gateway: uvicorn serving `create_app()` in embedded mode."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.responses import PlainTextResponse
from streamlit.testing.v1 import AppTest

from tests.infra import free_port, reset_process_state, serve_in_thread

APP = Path(__file__).resolve().parents[2] / "frontend" / "app.py"


@contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """Serve `app` on a free port in a background thread; yields its base URL."""
    with serve_in_thread(app, timeout_s=20) as served:
        yield served.url


@pytest.fixture
def gateway_url(embedded: Path) -> Iterator[str]:
    """The real gateway app (SQLite, local objects, no broker in embedded mode)."""
    from services.gateway.app import create_app

    with serving(create_app()) as url:
        yield url


def run_ui(monkeypatch: pytest.MonkeyPatch, gateway: str) -> AppTest:
    """Render the UI's default page pointed at `gateway`."""
    monkeypatch.setenv("TUNEFLOW_GATEWAY_URL", gateway)
    app = AppTest.from_file(str(APP), default_timeout=30)
    app.run()
    assert not app.exception, app.exception
    return app


def texts(elements) -> list[str]:  # noqa: ANN001 - streamlit's element sequences have no public type
    return [element.value for element in elements]


def test_status_page_shows_every_gateway_check(gateway_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    app = run_ui(monkeypatch, gateway_url)

    assert app.title[0].value == "Platform status"
    assert f"Gateway: {gateway_url}" in app.caption[0].value
    assert texts(app.success) == [
        "All systems operational",
        "Database: ok",
        "Broker (Redis): ok",
        "Object store: ok",
    ]
    assert not app.error and not app.warning


def test_status_page_names_the_dependency_that_is_down(
    gateway_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A folder where the SQLite file should be: the gateway's database check fails, the rest pass.
    monkeypatch.setenv("TUNEFLOW_DATABASE_URL", f"sqlite:///{tmp_path}")
    reset_process_state()

    app = run_ui(monkeypatch, gateway_url)

    assert texts(app.warning) == ["Degraded: the gateway cannot reach every dependency"]
    assert texts(app.success) == ["Broker (Redis): ok", "Object store: ok"]
    [database] = texts(app.error)
    assert database.startswith("Database: down (OperationalError")


def test_status_page_says_when_the_gateway_is_unreachable(monkeypatch: pytest.MonkeyPatch) -> None:
    closed = f"http://127.0.0.1:{free_port()}"

    app = run_ui(monkeypatch, closed)

    [message] = texts(app.error)
    assert message.startswith(f"The gateway is unreachable at {closed}.")
    assert "TUNEFLOW_GATEWAY_URL" in message
    assert not app.success


def test_status_page_reports_a_gateway_that_answers_wrongly(monkeypatch: pytest.MonkeyPatch) -> None:
    # Something else on the gateway's address: it answers, but not with the gateway's API.
    impostor = FastAPI()
    impostor.get("/healthz")(lambda: PlainTextResponse("upstream error", status_code=502))

    with serving(impostor) as url:
        app = run_ui(monkeypatch, url)

    [message] = texts(app.error)
    assert message == "The gateway answered unexpectedly: GET /healthz answered 502: upstream error"
