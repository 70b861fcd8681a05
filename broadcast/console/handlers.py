"""Console pages answer errors in HTML: a redirect to log in, a 403 page, or an error page.

The API's JSON handlers stay as they are; for paths under /console their answer is re-rendered
as a page that keeps the same status code and Chinese message.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import IntegrityError
from starlette.exceptions import HTTPException
from starlette.responses import RedirectResponse, Response

from broadcast.console.access import (
    LoginRequired,
    PageForbidden,
    clear_access_cookie,
    login_url,
    requested_path,
)
from broadcast.console.templating import Viewer, render
from broadcast.errors import BroadcastError

Handler = Callable[[Request, Any], Response | Awaitable[Response]]

_FALLBACK_MESSAGES = {
    404: "页面不存在，请返回概览后从导航进入",
    405: "不支持此操作，请返回页面后使用页面上的按钮",
}


def _is_console(request: Request) -> bool:
    return request.url.path.startswith("/console")


def _message_of(response: Response) -> str:
    try:
        body = json.loads(bytes(response.body))
        return str(body["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return _FALLBACK_MESSAGES.get(response.status_code, "请求无法完成，请返回后重试")


def error_page(request: Request, *, status_code: int, message: str, viewer: Viewer | None = None) -> Response:
    viewer = viewer or getattr(request.state, "viewer", None)
    return render(
        request, "error.html", user=viewer, status_code=status_code, message=message, code=status_code
    )


def _html_for_console(original: Handler) -> Handler:
    async def handler(request: Request, exc: Any) -> Response:
        result = original(request, exc)
        response = await result if inspect.isawaitable(result) else result
        if not _is_console(request):
            return response
        return error_page(request, status_code=response.status_code, message=_message_of(response))

    return handler


async def _login_required(request: Request, _: LoginRequired) -> Response:
    target = login_url(requested_path(request))
    response: Response
    if request.headers.get("HX-Request") == "true":
        # A redirect would be followed by the XHR and the login form swapped into a fragment.
        response = Response(status_code=204, headers={"HX-Redirect": target})
    else:
        response = RedirectResponse(target, status_code=303)
    clear_access_cookie(response)
    return response


async def _forbidden(request: Request, exc: PageForbidden) -> Response:
    message = f"您的角色无权查看「{exc.section.title}」，如需访问请联系系统管理员"
    return error_page(request, status_code=403, message=message, viewer=exc.viewer)


def install_console_handlers(app: FastAPI) -> None:
    for exc_class in (BroadcastError, RequestValidationError, HTTPException, IntegrityError):
        original = app.exception_handlers.get(exc_class)
        if original is not None:
            app.add_exception_handler(exc_class, _html_for_console(original))
    app.add_exception_handler(LoginRequired, _login_required)  # type: ignore[arg-type]
    app.add_exception_handler(PageForbidden, _forbidden)  # type: ignore[arg-type]
