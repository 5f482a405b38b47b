"""Errors in OpenAI's shape (`{"error": {"message", "type", "param", "code"}}`), naming the offending field."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException


class APIError(Exception):
    """An error answered to the client; `param` names the request field at fault."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        type_: str = "invalid_request_error",
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.type = type_
        self.code = code

    def response(self, headers: dict[str, str] | None = None) -> JSONResponse:
        """This error as a JSON response."""
        body = {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}
        return JSONResponse(body, status_code=self.status, headers=headers)


def bad_request(message: str, param: str) -> APIError:
    """A 400 naming `param`."""
    return APIError(400, f"{param}: {message}", param=param)


def model_not_found(name: str) -> APIError:
    """The same 404 for a model that does not exist and one the caller may not see, so neither leaks."""
    return APIError(404, f"model {name!r} does not exist", param="model", code="model_not_found")


def field_path(loc: Sequence[Any]) -> str:
    """`("body", "messages", 0, "role")` -> `messages[0].role`; a bare body is `body`."""
    parts = list(loc[1:] if loc and loc[0] == "body" else loc)
    path = ""
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "body"


def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0]
    if first.get("type") == "json_invalid":
        return bad_request("body is not valid JSON", "body").response()
    param = field_path(first.get("loc", ()))
    return bad_request(first.get("msg", "invalid value"), param).response()


def _api_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, APIError)
    headers = {"Retry-After": "1"} if exc.status in (429, 503) else None
    return exc.response(headers)


def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    return APIError(exc.status_code, str(exc.detail), type_="http_error").response(exc.headers)


def install_error_handlers(app: FastAPI) -> None:
    """Answer every error the app raises in OpenAI's shape; validation errors become 400s naming the field."""
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(APIError, _api_error)
    app.add_exception_handler(HTTPException, _http_error)
