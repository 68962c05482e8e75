"""Every error as JSON `{"detail": ..., "field": ...}`, and the request-size cap.

Store errors map to status codes (`NotFoundError` 404, `ConflictError` 409); bad names
of artifacts 400; validation errors 422 naming the first field at fault; an unknown space
or a bad space parameter 422. Anything else is a bug: 500 with no internals in the body.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.store import ArtifactNameError, ConflictError, NotFoundError
from spaces import ArchError, UnknownSpaceError

log = logging.getLogger("hwnas.api")


def problem(status: int, detail: str, field: str | None = None,
            headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail, "field": field}, status_code=status, headers=headers)


def _location(loc: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(part) for part in loc)


async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
    field = _location(first.get("loc", ()))
    lines = [f"{_location(e.get('loc', ()))}: {e.get('msg', '')}" for e in errors[:5]]
    return problem(422, "; ".join(lines), field or None)


async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
    return problem(exc.status_code, str(exc.detail), headers=getattr(exc, "headers", None))


def _mapped(status: int, field: str | None = None):
    async def handler(_: Request, exc: Exception) -> JSONResponse:
        return problem(status, str(exc), field)
    return handler


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem(500, f"internal error ({type(exc).__name__}); see the server log")


def install_handlers(app: FastAPI) -> None:
    """Register the JSON error handlers on `app`."""
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(NotFoundError, _mapped(404))
    app.add_exception_handler(ConflictError, _mapped(409))
    app.add_exception_handler(FileNotFoundError, _mapped(404))
    app.add_exception_handler(ArtifactNameError, _mapped(400, "name"))
    app.add_exception_handler(UnknownSpaceError, _mapped(422, "space"))
    app.add_exception_handler(ArchError, _mapped(422))
    app.add_exception_handler(ValueError, _mapped(422))
    app.add_exception_handler(Exception, _unexpected)


class BodyTooLarge(Exception):
    """The request body went over the cap while being read."""


class BodyLimitMiddleware:
    """413 for a request body over `max_bytes`, by Content-Length or while streaming."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._reject(scope, receive, send)
            return
        seen = 0
        started = False

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise BodyTooLarge
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except BodyTooLarge:
            if not started:
                await self._reject(scope, receive, send)

    async def _reject(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem(413, f"request body over the limit of {self.max_bytes} bytes",
                           "body")
        await response(scope, receive, send)
