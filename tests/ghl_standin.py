"""A stand-in for the GoHighLevel API v2, for tests only (GoHighLevel cannot run here).

It answers the endpoints drip's `ghl` handler calls, with GoHighLevel's documented
shapes: GET /locations/{id}, GET /locations/{id}/customFields, PUT /contacts/{id},
POST /contacts/{id}/tags, POST /contacts/{id}/workflow/{id}. Like GoHighLevel it
wants `Authorization: Bearer <location token>` and `Version: 2021-07-28`, allows
100 requests per 10 s per location (a sliding window) answering 429 with
Retry-After beyond, sends X-RateLimit-* headers, and can be told to answer 429
to everything for a while (a "storm"). Every call is recorded.
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Call:
    at: float  # time.time() when it arrived
    method: str
    path: str
    location: str | None
    status: int
    body: dict | None


@dataclass
class StandIn:
    tokens: dict[str, str]  # token → location
    fields: dict[str, list[dict]] = field(default_factory=dict)  # location → custom fields
    timezones: dict[str, str] = field(default_factory=dict)
    limit: int = 100
    window_s: float = 10.0
    calls: list[Call] = field(default_factory=list)
    storm_until: float = 0.0
    storm_retry_after: int = 2

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._recent: dict[str, list[float]] = {}
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                standin._serve(self)

            def do_PUT(self) -> None:
                standin._serve(self)

            def do_POST(self) -> None:
                standin._serve(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def storm(self, seconds: float, retry_after: int = 2) -> None:
        """Answer 429 to every call for `seconds`."""
        self.storm_until, self.storm_retry_after = time.time() + seconds, retry_after

    def calls_of(self, location: str, method: str | None = None, path: str | None = None) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.location == location and (method is None or c.method == method)
                    and (path is None or re.fullmatch(path, c.path))]

    def max_in_any_window(self, location: str) -> int:
        """The most calls of a location that arrived within any `window_s` (429s included)."""
        times = sorted(c.at for c in self.calls_of(location))
        most, start = 0, 0
        for end, t in enumerate(times):
            while t - times[start] >= self.window_s:
                start += 1
            most = max(most, end - start + 1)
        return most

    # --- serving ----------------------------------------------------------------------------------

    def _serve(self, request: BaseHTTPRequestHandler) -> None:
        length = int(request.headers.get("Content-Length") or 0)
        raw = request.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        token = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        location = self.tokens.get(token)
        now = time.time()
        with self._lock:
            status, answer, headers = self._answer(request, location, body, now)
            self.calls.append(Call(now, request.command, request.path, location, status, body))
        data = json.dumps(answer).encode()
        request.send_response(status)
        for name, value in headers.items():
            request.send_header(name, value)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        request.wfile.write(data)

    def _answer(self, request, location: str | None, body: dict | None, now: float) -> tuple[int, dict, dict]:
        if location is None:
            return 401, {"statusCode": 401, "message": "Invalid JWT"}, {}
        if request.headers.get("Version") != "2021-07-28":
            return 400, {"statusCode": 400, "message": "Version header is required"}, {}
        recent = [t for t in self._recent.get(location, []) if now - t < self.window_s]
        self._recent[location] = recent
        if now < self.storm_until:
            return 429, {"statusCode": 429, "message": "Too many requests"}, {"Retry-After": str(self.storm_retry_after)}
        if len(recent) >= self.limit:
            retry = max(1, math.ceil(recent[0] + self.window_s - now))
            return 429, {"statusCode": 429, "message": "Too many requests"}, {"Retry-After": str(retry)}
        recent.append(now)
        headers = {"X-RateLimit-Max": str(self.limit), "X-RateLimit-Remaining": str(self.limit - len(recent)),
                   "X-RateLimit-Interval-Milliseconds": str(int(self.window_s * 1000)),
                   "X-RateLimit-Limit-Daily": "200000", "X-RateLimit-Daily-Remaining": "199000"}
        path = request.path.split("?", 1)[0]
        if m := re.fullmatch(r"/locations/([^/]+)/customFields", path):
            if m.group(1) != location:
                return 403, {"statusCode": 403, "message": "The token does not have access to this location"}, headers
            return 200, {"customFields": self.fields.get(location, [])}, headers
        if m := re.fullmatch(r"/locations/([^/]+)", path):
            if m.group(1) != location:
                return 403, {"statusCode": 403, "message": "The token does not have access to this location"}, headers
            return 200, {"location": {"id": location, "timezone": self.timezones.get(location, "UTC")}}, headers
        if re.fullmatch(r"/contacts/[^/]+", path) and request.command == "PUT":
            return 200, {"succeded": True, "contact": {"id": path.rsplit("/", 1)[1]}}, headers
        if re.fullmatch(r"/contacts/[^/]+/tags", path) and request.command == "POST":
            return 201, {"tags": (body or {}).get("tags", [])}, headers
        if re.fullmatch(r"/contacts/[^/]+/workflow/[^/]+", path) and request.command == "POST":
            return 200, {"succeded": True}, headers
        return 404, {"statusCode": 404, "message": f"Cannot {request.command} {path}"}, headers
