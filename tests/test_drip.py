"""Drip timing end to end, with real processes: bursts, side-by-side workflows, cancel, a supervisor crash."""

from __future__ import annotations

import asyncio
import os
import signal

import httpx
import pytest

from tests import rawhttp
from tests.helpers import wait_for
from tests.sample_handlers import read_log
from tests.test_pipeline import exits

pytestmark = pytest.mark.slow

FAST = "0.05 to 0.1"


def contact(location: str, workflow: str, n: int, timeframe: str = FAST) -> dict:
    return {"contact_id": f"c{n}", "location": {"id": location}, "workflow": {"id": workflow},
            "customData": {"TimeFrame": timeframe}}


async def post_contacts(url: str, bodies: list[dict]) -> list[dict]:
    """Post contacts one after another (a burst: no waiting between them), answers in post order."""
    async with rawhttp.pool(url, 1) as connections:
        answers = []
        for body in bodies:
            status, answer = await rawhttp.post_json(connections, "/api/enqueue-contact", body)
            assert status == 202, answer
            answers.append(answer)
        return answers


def starts(log: list[dict]) -> list[dict]:
    return [row for row in log if row["ev"] == "enter"]


def assert_never_early(log: list[dict]) -> None:
    early = [row for row in starts(log) if row["t"] // 1_000_000 < row["r"]]
    assert not early, f"{len(early)} handlers started before their run_at, e.g. {early[0]}"


def test_a_burst_of_300_contacts_drips_in_order_within_the_timeframe(cluster, r, settings):
    """300 contacts to one workflow with TimeFrame 0.05-0.1: all handled in post order, gaps in range, none early."""
    cluster.start_all()
    answers = asyncio.run(post_contacts(cluster.web_url, [contact("L", "W", n) for n in range(300)]))
    wait_for(lambda: exits(r, settings.prefix) == 300, 120, "300 dripped contacts")
    log = read_log(r, settings.prefix)
    assert [row["id"] for row in starts(log)] == [a["id"] for a in answers]
    run_ats = [row["r"] for row in starts(log)]
    gaps = [b - a for a, b in zip(run_ats, run_ats[1:])]
    assert all(50 <= g <= 100 for g in gaps), (min(gaps), max(gaps))
    assert_never_early(log)


def test_workflows_and_locations_drip_side_by_side(cluster, r, settings):
    """Two workflows of one location and a second location drip at once: none waits for another's delays."""
    cluster.start_all()
    queues = [("L1", "A"), ("L1", "B"), ("L2", "A")]
    bodies = [contact(loc, wf, n) for n in range(20) for loc, wf in queues]
    asyncio.run(post_contacts(cluster.web_url, bodies))
    wait_for(lambda: exits(r, settings.prefix) == 60, 60, "60 dripped contacts")
    log = starts(read_log(r, settings.prefix))
    by_queue = {f"location:{loc}:workflow:{wf}": [row["t"] for row in log if row["q"] == f"location:{loc}:workflow:{wf}"]
                for loc, wf in queues}
    assert all(len(times) == 20 for times in by_queue.values())
    latest_first_start = max(times[0] for times in by_queue.values())
    earliest_last_start = min(times[-1] for times in by_queue.values())
    assert latest_first_start < earliest_last_start, "a queue only began after another had finished"
    assert_never_early(read_log(r, settings.prefix))


def test_a_cancelled_contact_is_never_handled_and_the_rest_keep_their_times(cluster, r, settings):
    """DELETE /messages/{id} on a scheduled contact: it is never handled, the others run at their run_at."""
    cluster.start_all()
    answers = asyncio.run(post_contacts(cluster.web_url, [contact("L", "W", n, "0.3 to 0.4") for n in range(8)]))
    victim = answers[5]["id"]
    gone = httpx.delete(f"{cluster.web_url}/messages/{victim}")
    assert gone.status_code == 200 and gone.json()["status"] == "cancelled"
    assert httpx.delete(f"{cluster.web_url}/messages/{victim}").status_code == 409
    assert httpx.delete(f"{cluster.web_url}/messages/0190c3c0-0000-7000-8000-000000000000").status_code == 404
    wait_for(lambda: exits(r, settings.prefix) == 7, 60, "the 7 other contacts")
    log = starts(read_log(r, settings.prefix))
    assert [row["id"] for row in log] == [a["id"] for a in answers if a["id"] != victim]
    planned = {a["id"]: a["run_at"] for a in answers}
    from drip.core.messages import iso

    assert all(iso(row["r"]) == planned[row["id"]] for row in log), "a run_at moved"


def test_a_supervisor_killed_mid_drip_loses_nothing_and_releases_nothing_early(cluster, r, settings):
    """SIGKILL the supervisor while contacts drip, start another: all are handled, in order, none early."""
    cluster.start_all()
    answers = asyncio.run(post_contacts(cluster.web_url, [contact("L", "W", n) for n in range(40)]))
    wait_for(lambda: exits(r, settings.prefix) >= 8, 30, "the drip to be under way")
    os.kill(cluster.children["supervisor"].pid, signal.SIGKILL)
    cluster.children["supervisor"].wait()
    cluster.start("supervisor2", "supervisor")
    wait_for(lambda: exits(r, settings.prefix) == 40, 90, "every contact after the restart")
    log = read_log(r, settings.prefix)
    assert [row["id"] for row in starts(log)] == [a["id"] for a in answers]
    assert_never_early(log)
