"""The console's HTML pages: each renders what drip.console.reads gives its JSON twin, through the
templates beside this module. `GET /messages/{id}` answers JSON when the client asks for it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates

from drip.console import api, charts, reads
from drip.console.auth import COOKIE, CSRF_FIELD
from drip.core.errors import DripError
from drip.core.messages import iso

templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))


def _when(ms: int | None) -> str:
    return iso(ms) if ms is not None else "-"


def _duration(ms: int | None) -> str:
    if ms is None:
        return "-"
    seconds = abs(ms) / 1000
    text = f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min" if seconds < 7200 else \
        f"{seconds / 3600:.1f} h"
    return text if ms >= 0 else f"in {text}"


def _text(payload) -> str:
    """A payload (msgspec.Raw JSON, already redacted) as text for a page."""
    return "-" if payload is None else bytes(payload).decode(errors="replace")


templates.env.filters.update(when=_when, duration=_duration, text=_text, url=lambda name: quote(name, safe=""))
templates.env.globals.update(csrf_field=CSRF_FIELD)


def _render(request: Request, name: str, context: dict, status: int = 200) -> Response:
    visitor = request.state.visitor
    return templates.TemplateResponse(request, name, {
        **context, "visitor": visitor, "csrf": visitor.csrf, "operator": visitor.operator,
        "done": request.query_params.get("done"), "error": request.query_params.get("error"),
        "here": request.url.path + (f"?{request.url.query}" if request.url.query else "")}, status_code=status)


async def _page(request: Request, name: str, call, *args, **extra) -> Response:
    try:
        data = await run_in_threadpool(call, *args)
    except DripError as exc:
        return _render(request, "error.html", {"message": str(exc)}, api.error_status(exc))
    return _render(request, name, {"data": data, **extra})


async def overview(request: Request) -> Response:
    c = request.app.state.console
    return await _page(request, "overview.html", reads.overview, c.store, c.settings)


def overview_charts(data: dict) -> dict:
    """The last hour, one bar per minute (minutes without history are zero), oldest on the left."""
    now = datetime.fromtimestamp(data["totals"]["now_ms"] / 1000, UTC).replace(second=0, microsecond=0)
    labels = [(now - timedelta(minutes=59 - i)).isoformat().replace("+00:00", "Z") for i in range(60)]
    by_minute = {m["minute"]: m for m in data["per_minute"]}
    if not by_minute:
        return {"handled": charts.bars([], label="handled per minute"), "failed": "", "lag": ""}

    def series(key: str, scale: float = 1) -> list[tuple[str, float]]:
        return [(at, by_minute[at][key] / scale if at in by_minute else 0) for at in labels]

    return {"handled": charts.bars(series("handled"), label="handled per minute"),
            "failed": charts.bars(series("failed"), label="dead per minute", colour="#d83b3b"),
            "lag": charts.bars(series("max_lag_ms", 1000), label="worst lag per minute (s)", colour="#8a3bd8")}


templates.env.globals.update(overview_charts=overview_charts, timeline=charts.planned_vs_actual,
                             now_iso=lambda: datetime.now(UTC).isoformat(timespec="seconds"))


async def queues(request: Request) -> Response:
    c, q = request.app.state.console, request.query_params
    sort = q.get("sort", "index") if q.get("sort") in ("index", "waiting", "run_at") else "index"
    return await _page(request, "queues.html",
                       lambda: reads.queues(c.store, match=q.get("match"), sort=sort, cursor=q.get("cursor")))


async def queue(request: Request) -> Response:
    c = request.app.state.console
    return await _page(request, "queue.html", reads.queue, c.store, c.settings, request.path_params["name"])


async def dead(request: Request) -> Response:
    c = request.app.state.console
    return await _page(request, "dead.html", lambda: reads.dead(c.store, queue=request.query_params.get("queue")))


async def message(request: Request) -> Response:
    if "application/json" in request.headers.get("accept", "") and "text/html" not in request.headers.get(
            "accept", ""):
        return await api.message(request)
    c = request.app.state.console
    return await _page(request, "message.html", reads.message, c.store, c.settings, request.path_params["id"])


async def search(request: Request) -> Response:
    """The search box: an id goes to its message page."""
    wanted = request.query_params.get("id", "").strip()
    return RedirectResponse(f"/messages/{quote(wanted, safe='')}" if wanted else "/", status_code=303)


async def gohighlevel(request: Request) -> Response:
    c = request.app.state.console
    return await _page(request, "ghl.html", reads.gohighlevel, c.store, c.settings)


async def login(request: Request) -> Response:
    """GET: the form; POST: a valid token sets the HttpOnly, SameSite=Strict cookie."""
    gate = request.app.state.console.gate
    target = request.query_params.get("next", "/")
    target = target if target.startswith("/") and not target.startswith("//") else "/"
    if request.method == "GET":
        return templates.TemplateResponse(request, "login.html", {"next": target, "failed": False})
    form = await request.form()
    token = str(form.get("token", ""))
    target = str(form.get("next") or target)
    target = target if target.startswith("/") and not target.startswith("//") else "/"
    if token not in gate.roles:
        return templates.TemplateResponse(request, "login.html", {"next": target, "failed": True}, status_code=401)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(COOKIE, token, httponly=True, samesite="strict", secure=request.url.scheme == "https",
                        path="/")
    return response


async def logout(request: Request) -> Response:
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response
