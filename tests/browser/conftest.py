"""`drip dev` (web, supervisor, worker, console) on the test Redis and database under a prefix of this
module, and Chromium driven by Playwright (the system's /usr/bin/chromium: no browser download)."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis

from drip.core import settings as config
from drip.core.keys import Keys
from tests.conftest import REDIS_URL
from tests.helpers import ROOT, delete_prefix, drip_env, free_port, wait_for

CHROMIUM = "/usr/bin/chromium"
#: Where the tests leave their screenshots: docs/ for the README when DRIP_SCREENSHOTS=1, else a temp folder.
SCREENSHOTS = ROOT / "docs" / "screenshots"


@dataclass
class Dev:
    settings: config.Settings
    web: str
    console: str
    env: dict
    folder: Path

    def post(self, queue: str, payload: dict, **extra) -> str:
        answer = httpx.post(f"{self.web}/enqueue", json={"queue": queue, "payload": payload, **extra}, timeout=10)
        assert answer.status_code == 202, answer.text
        return answer.json()["id"]

    def cli(self, *args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "drip", *args], env=self.env, capture_output=True, text=True, check=False,
                              timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def status(self) -> dict:
        return json.loads(self.cli("status", "--json"))

    def start_console(self, tokens: str) -> str:
        """A second console (not open: with DRIP_CONSOLE_TOKENS) on the same data."""
        port = free_port()
        log = open(self.folder / f"console-{port}.log", "ab")  # noqa: SIM115 (the child writes to it until it stops)
        child = subprocess.Popen([sys.executable, "-m", "drip", "console", "--port", str(port)],
                                 env={**self.env, "DRIP_CONSOLE_TOKENS": tokens}, stdout=log, stderr=subprocess.STDOUT)
        self.extra.append(child)
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: _answers(url + "/login"), 30, "the console with tokens")
        return url

    extra: list = None  # consoles started by tests, stopped with drip dev


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code < 500
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def dev(database_url, tmp_path_factory) -> Dev:
    """drip dev with its console open on loopback (DRIP_CONSOLE_TOKENS unset), for this module."""
    prefix = f"t{secrets.token_hex(4)}"
    settings = config.load(prefix=prefix, redis_url=REDIS_URL, database_url=database_url, processes=1, threads=4,
                           lease_ttl_ms=3000, backoff_base_ms=10, backoff_max_ms=50)
    folder = tmp_path_factory.mktemp("dev")
    web_port, console_port = free_port(), free_port()
    env = drip_env(settings, DRIP_CONSOLE_PORT=str(console_port), DRIP_MAX_ATTEMPTS="2", DRIP_LOG_LEVEL="info",
                   DRIP_METRICS_FLUSH_MS="100")
    env.pop("DRIP_CONSOLE_TOKENS", None)
    log = open(folder / "dev.log", "ab")  # noqa: SIM115 (drip dev writes to it until it stops)
    process = subprocess.Popen([sys.executable, "-m", "drip", "dev", "--port", str(web_port)], env=env, cwd=folder,
                               stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    d = Dev(settings, f"http://127.0.0.1:{web_port}", f"http://127.0.0.1:{console_port}", env, folder, extra=[])
    try:
        wait_for(lambda: _answers(d.web + "/readyz") and _answers(d.console + "/"), 90, "drip dev and its console")
        wait_for(lambda: d.status()["workers"], 60, "a worker process")
        yield d
    finally:
        for child in d.extra:
            child.terminate()
            child.wait(30)
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        delete_prefix(redis.Redis.from_url(REDIS_URL), Keys(prefix))
        if os.environ.get("DRIP_TEST_DUMP_LOGS"):
            sys.stderr.write((folder / "dev.log").read_text(errors="replace")[-6000:])


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    p = context.new_page()
    yield p
    context.close()


def screenshot(page, name: str, tmp_path: Path) -> None:
    """Keep what the page showed: under docs/screenshots/ when DRIP_SCREENSHOTS=1 (the README's pictures)."""
    folder = SCREENSHOTS if os.environ.get("DRIP_SCREENSHOTS") == "1" else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)
