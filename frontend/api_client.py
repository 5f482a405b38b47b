"""The UI's only way into the platform: a typed HTTP client of the gateway.

Pages call `GatewayClient` methods and render what they return; they never touch the database,
queue or object store, so the UI runs anywhere it can reach TUNEFLOW_GATEWAY_URL.
"""

from __future__ import annotations

import os
from types import TracebackType

import httpx
from pydantic import BaseModel, ValidationError

from shared.settings import Settings

# A status page must answer promptly even when the gateway hangs.
DEFAULT_TIMEOUT_S = 5.0


def gateway_url() -> str:
    """The gateway's base URL: TUNEFLOW_GATEWAY_URL, else the settings field's default.

    Read directly rather than through `get_settings()`, which in production would demand
    secrets (database, storage, signing key) that the UI has no business holding.
    """
    return os.environ.get("TUNEFLOW_GATEWAY_URL") or Settings.model_fields["gateway_url"].default


class GatewayUnreachable(Exception):
    """No answer at all: connection refused, unknown host or timeout."""


class GatewayError(Exception):
    """The gateway answered, but not as its API promises."""


class CheckResult(BaseModel):
    """One dependency check from `/healthz`."""

    ok: bool
    error: str | None = None


class Health(BaseModel):
    """The gateway's `/healthz` answer: overall status and one result per dependency."""

    status: str
    checks: dict[str, CheckResult]

    @property
    def ok(self) -> bool:
        """Whether every dependency is reachable."""
        return self.status == "ok" and all(check.ok for check in self.checks.values())


class GatewayClient:
    """Typed calls to the gateway's HTTP API; use as a context manager to close the connection pool."""

    def __init__(
        self,
        base_url: str | None = None,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = (base_url or gateway_url()).rstrip("/")
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout_s, transport=transport)

    def __enter__(self) -> GatewayClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Release the connection pool."""
        self._http.close()

    def health(self) -> Health:
        """Database, broker and object-store reachability as the gateway sees it.

        A degraded gateway answers 503 with the same body, so both codes are results here.
        """
        response = self._request("GET", "/healthz", expected={200, 503})
        try:
            return Health.model_validate(response.json())
        except (ValueError, ValidationError) as exc:
            raise GatewayError(f"GET /healthz returned an unexpected body: {response.text[:200]}") from exc

    def _request(self, method: str, path: str, *, expected: set[int]) -> httpx.Response:
        try:
            response = self._http.request(method, path)
        except httpx.TransportError as exc:
            raise GatewayUnreachable(f"no answer from {self.base_url}: {type(exc).__name__}: {exc}") from exc
        if response.status_code not in expected:
            raise GatewayError(f"{method} {path} answered {response.status_code}: {response.text[:200]}")
        return response
