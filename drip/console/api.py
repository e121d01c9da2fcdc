"""The console's JSON API under /api/ and its actions. Every action is a POST running the same code as
the CLI (drip.operations); posted from a page's form it answers with a redirect back to that page,
saying what was done, so the pages work without JavaScript."""

from __future__ import annotations

from urllib.parse import urlencode

import msgspec
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from drip.console import reads
from drip.core.errors import Conflict, DripError, InvalidInput, NotFound
from drip.operations import dead as dead_operations
from drip.operations import queues as queue_operations

_STATUS = {NotFound: 404, Conflict: 409, InvalidInput: 400}


def json(data: object, status: int = 200) -> Response:
    return Response(msgspec.json.encode(data), status_code=status, media_type="application/json")


def error_status(exc: DripError) -> int:
    return next((code for kind, code in _STATUS.items() if isinstance(exc, kind)), 400)


async def _read(request: Request, call, *args) -> Response:
    try:
        return json(await run_in_threadpool(call, *args))
    except DripError as exc:
        return json({"error": str(exc)}, error_status(exc))


async def overview(request: Request) -> Response:
    c = request.app.state.console
    return await _read(request, reads.overview, c.store, c.settings)


async def queues(request: Request) -> Response:
    c, q = request.app.state.console, request.query_params
    sort = q.get("sort", "index")
    if sort not in ("index", "waiting", "run_at"):
        return json({"error": "sort is one of index, waiting, run_at"}, 400)
    return await _read(request, lambda: reads.queues(c.store, match=q.get("match"), sort=sort, cursor=q.get("cursor")))


async def queue(request: Request) -> Response:
    c = request.app.state.console
    return await _read(request, reads.queue, c.store, c.settings, request.path_params["name"])


async def dead(request: Request) -> Response:
    c = request.app.state.console
    return await _read(request, lambda: reads.dead(c.store, queue=request.query_params.get("queue")))


async def message(request: Request) -> Response:
    c = request.app.state.console
    return await _read(request, reads.message, c.store, c.settings, request.path_params["id"])


async def _params(request: Request) -> tuple[dict, bool]:
    """The action's parameters (form fields or a JSON object) and whether a page's form sent them."""
    if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return dict(await request.form()), True
    body = await request.body()
    try:
        decoded = msgspec.json.decode(body) if body.strip() else {}
    except msgspec.DecodeError:
        raise InvalidInput("the body must be a JSON object (or a form)") from None
    if not isinstance(decoded, dict):
        raise InvalidInput("the body must be a JSON object (or a form)")
    return decoded, False


async def act(action: str, request: Request) -> Response:
    """POST /api/<action>: run it as the visitor; JSON {"done", "message"}, or a redirect for a form."""
    c, visitor = request.app.state.console, request.state.visitor
    form = False
    try:
        params, form = await _params(request)
        done = await run_in_threadpool(_run, c, action, request.path_params, params, visitor.who)
        outcome, status = {"done": done.text}, 200
        answer = done.as_json()
    except DripError as exc:
        outcome, status = {"error": str(exc)}, error_status(exc)
        answer = {"error": str(exc)}
    if form:
        back = str(params.get("next") or "/")
        back = back if back.startswith("/") and not back.startswith("//") else "/"
        return RedirectResponse(f"{back}{'&' if '?' in back else '?'}{urlencode(outcome)}", status_code=303)
    return json(answer, status)


def _run(c, action: str, path: dict, params: dict, who: str):
    store, settings = c.store, c.settings
    if action == "pause":
        return queue_operations.pause(store, path["name"], by=who)
    if action == "resume":
        return queue_operations.resume(store, path["name"], by=who)
    if action == "skip":
        return queue_operations.skip_head(store, path["name"], by=who)
    if action == "cancel":
        return queue_operations.cancel(store, settings.database_url, path["id"], by=who)
    message_id, queue = params.get("id") or None, params.get("queue") or None
    if not (message_id or queue or str(params.get("all", "")).lower() in ("1", "true", "on")):
        raise InvalidInput("name the dead letters: id, queue, or all")
    letters = dead_operations.chosen(store.dead, message_id=message_id, queue=queue)
    if action == "replay":
        to = params.get("to", "head")
        if to not in ("head", "tail"):
            raise InvalidInput("to is head or tail")
        return dead_operations.replay(store.dead, letters, to_head=to == "head", by=who)
    return dead_operations.purge(store.dead, letters, by=who)
