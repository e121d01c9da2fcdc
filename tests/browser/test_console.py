"""The console in a real browser (Chromium through Playwright) against `drip dev` with messages posted:
what the issue's "Must show" lists, each checked through the page and through drip itself."""

from __future__ import annotations

from urllib.parse import quote

import httpx
import psycopg
import pytest
import redis

from tests.browser.conftest import screenshot
from tests.conftest import REDIS_URL
from tests.helpers import wait_for

pytestmark = pytest.mark.slow


def _paused(dev, queue: str) -> bool | None:
    row = next((r for r in dev.status()["queues"] if r["queue"] == queue), None)
    return row["paused"] if row else None


def _history(dev, message_id: str) -> str | None:
    with psycopg.connect(dev.settings.database_url) as conn:
        row = conn.execute("SELECT status FROM sequential_queue WHERE id = %s", (message_id,)).fetchone()
    return row[0] if row else None


def test_queues_page_lists_posted_messages_and_the_queue_page_shows_head_and_scheduled(dev, page, tmp_path):
    """Messages posted to a paused queue and a scheduled one show on the Queues page; the queue page shows
    its head (with its id and payload) and its scheduled message with run_at."""
    dev.cli("pause", "browser:held")
    head = dev.post("browser:held", {"n": 1})
    dev.post("browser:held", {"n": 2})
    later = dev.post("browser:held", {"n": 3}, delay=3600)
    page.goto(f"{dev.console}/queues?match=browser:*")
    row = page.locator("tr[data-queue='browser:held']")
    row.wait_for()
    assert "paused" in row.inner_text()
    screenshot(page, "queues", tmp_path)
    row.get_by_role("link", name="browser:held").click()
    page.wait_for_url(f"**/queues/{quote('browser:held', safe='')}")
    assert page.locator(".head .message-id").inner_text() == head
    assert later in page.locator("table.scheduled").inner_text()
    for label in ("Pause", "Resume", "Skip head", "Cancel"):
        assert page.get_by_role("button", name=label, exact=True).count() >= 1, label
    screenshot(page, "queue", tmp_path)
    dev.cli("resume", "browser:held")
    wait_for(lambda: _history(dev, head) == "done", 60, "the head handled once resumed")


def test_pause_and_resume_buttons_change_the_queue(dev, page):
    """Pause on the queue page pauses it (drip status --json says so); Resume resumes it."""
    dev.post("browser:buttons", {"n": 1}, delay=3600)
    page.goto(f"{dev.console}/queues/{quote('browser:buttons', safe='')}")
    page.get_by_role("button", name="Pause", exact=True).click()
    page.locator(".flash.done").wait_for()
    assert "paused browser:buttons" in page.locator(".flash.done").inner_text()
    assert _paused(dev, "browser:buttons") is True
    page.get_by_role("button", name="Resume", exact=True).click()
    page.locator(".flash.done").wait_for()
    assert "resumed browser:buttons" in page.locator(".flash.done").inner_text()
    assert _paused(dev, "browser:buttons") is False


def test_a_dead_letter_replayed_from_the_dead_letters_page_is_handled(dev, page, tmp_path):
    """A message that fails every attempt is on the Dead letters page; once its cause is gone, Replay
    puts it back and it is handled."""
    key = f"{dev.settings.prefix}:test:fixed"
    dead = dev.post("browser:dead", {"fail_until": key})
    wait_for(lambda: dead in httpx.get(f"{dev.console}/api/dead").text, 60, "the message dead-lettered")
    page.goto(f"{dev.console}/dead")
    row = page.locator(f"tr[data-id='{dead}']")
    assert "browser:dead" in row.inner_text()
    screenshot(page, "dead", tmp_path)
    redis.Redis.from_url(REDIS_URL).set(key, 1)
    row.get_by_role("button", name="Replay", exact=True).click()
    page.locator(".flash.done").wait_for()
    assert "replayed 1 message" in page.locator(".flash.done").inner_text()
    wait_for(lambda: _history(dev, dead) == "done", 60, "the replayed message handled")


def test_the_message_page_of_a_handled_message_shows_done(dev, page, tmp_path):
    """The search box takes an id to its message page, which says `done` once it is handled."""
    handled = dev.post("browser:done", {"n": 1})
    wait_for(lambda: _history(dev, handled) == "done", 60, "the message handled")
    page.goto(dev.console + "/")
    screenshot(page, "overview", tmp_path)
    page.get_by_label("message id").fill(handled)
    page.get_by_role("button", name="Find").click()
    page.wait_for_url(f"**/messages/{handled}")
    assert page.locator("#message-status").inner_text() == "done"
    screenshot(page, "message", tmp_path)
    answer = httpx.get(f"{dev.console}/messages/{handled}", headers={"Accept": "application/json"})
    assert answer.json()["status"] == "done" and answer.json()["queue"] == "browser:done"
    page.goto(dev.console + "/gohighlevel")
    screenshot(page, "gohighlevel", tmp_path)


def test_a_viewer_sees_no_action_buttons_and_its_posts_are_refused(dev, page):
    """Logged in with a viewer token: no Pause/Resume/Skip head/Replay/Purge/Cancel buttons; its POSTs get 403."""
    console = dev.start_console("s3cret-operator:operator,s3cret-viewer:viewer")
    dev.post("browser:viewer", {"n": 1}, delay=3600)
    _log_in(page, console, "s3cret-viewer", "browser:viewer")
    page.wait_for_url("**/queues/browser*viewer")
    assert "viewer:" in page.locator(".who").inner_text()
    for label in ("Pause", "Resume", "Skip head", "Cancel", "Replay", "Purge"):
        assert page.get_by_role("button", name=label, exact=True).count() == 0, label
    page.goto(f"{console}/dead")
    assert page.get_by_role("button", name="Replay", exact=True).count() == 0
    viewer = {"Authorization": "Bearer s3cret-viewer"}
    answer = httpx.post(f"{console}/api/queues/browser%3Aviewer/pause", headers=viewer, json={})
    assert answer.status_code == 403
    cookie_post = page.request.post(f"{console}/api/queues/browser%3Aviewer/pause", form={"csrf": "x"})
    assert cookie_post.status == 403
    assert _paused(dev, "browser:viewer") is False


def test_an_operator_acts_through_the_login_cookie_with_its_csrf_token(dev, page):
    """Logged in as operator, Pause works (the form carries the CSRF token); a POST without it is refused."""
    console = dev.start_console("op-token:operator")
    dev.post("browser:operator", {"n": 1}, delay=3600)
    _log_in(page, console, "op-token", "browser:operator")
    page.get_by_role("button", name="Pause", exact=True).click()
    page.locator(".flash.done").wait_for()
    assert _paused(dev, "browser:operator") is True
    forged = page.request.post(f"{console}/api/queues/browser%3Aoperator/resume", form={"next": "/"})
    assert forged.status == 403
    assert _paused(dev, "browser:operator") is True
    cookie = next(c for c in page.context.cookies() if c["name"] == "drip_console")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"


def test_without_a_token_every_page_and_api_call_is_401(dev, page):
    """A console with tokens: a page without one answers 401 (with a link to log in), the API too."""
    console = dev.start_console("only-token:operator")
    response = page.goto(console + "/queues")
    assert response.status == 401
    assert page.get_by_role("link", name="Log in").count() == 1
    for path in ("/", "/api/overview", "/api/messages/0190a0a0-0000-7000-8000-000000000000", "/metrics"):
        assert httpx.get(console + path).status_code == 401, path
    assert httpx.post(console + "/api/dead/purge", json={"all": True}).status_code == 401
    assert httpx.get(console + "/api/overview", headers={"Authorization": "Bearer wrong"}).status_code == 401


def _log_in(page, console: str, token: str, queue: str) -> None:
    """Log in through the console's form, sent on to `queue`'s page."""
    page.goto(f"{console}/login?next=/queues/{quote(queue, safe='')}")
    page.get_by_label("token").fill(token)
    page.get_by_role("button", name="Log in").click()
