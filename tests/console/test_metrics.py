"""/metrics after a real run: the families the issue names, with the values of what was handled, and
clean under `promtool check metrics`; the shipped alert rules clean under `promtool check rules`."""

from __future__ import annotations

import shutil
import subprocess

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import ROOT, wait_for

FAMILIES = {"drip_messages_accepted", "drip_messages_handled", "drip_handler_duration_seconds", "drip_lag_seconds",
            "drip_queues", "drip_messages", "drip_leases_reclaimed", "drip_busy_threads", "drip_workers",
            "drip_recorder_backlog", "drip_webhook_requests"}


def promtool() -> str:
    found = shutil.which("promtool")
    assert found, "promtool is missing: apt-get install prometheus (.ci/run does)"
    return found


def scrape(url: str) -> str:
    answer = httpx.get(url + "/metrics", headers={"Authorization": "Bearer metrics-token"}, timeout=10)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
    return answer.text


def samples(text: str) -> dict[tuple, float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


@pytest.mark.slow
def test_metrics_after_a_run_count_what_was_handled_and_pass_promtool(cluster):
    """20 messages posted and handled: accepted, handled, durations, lags and webhook requests say 20."""
    cluster.start_all(DRIP_METRICS_FLUSH_MS="100")
    console = cluster.start_console(DRIP_CONSOLE_TOKENS="metrics-token:viewer")
    for i in range(20):
        assert httpx.post(cluster.web_url + "/enqueue", json={"queue": f"m:{i % 4}", "payload": {"i": i}}).status_code \
            == 202

    last: dict = {}

    # Each process adds its counts every DRIP_METRICS_FLUSH_MS: the worker's 20th handled can land before
    # the web's 20th accepted, so wait for every process's count.
    flushed = (("drip_messages_handled_total", (("outcome", "handled"), ("route", "*"))),
               ("drip_messages_accepted_total", (("source", "enqueue"),)),
               ("drip_webhook_requests_total", (("code", "202"), ("endpoint", "/enqueue"))))

    def handled() -> dict:
        last.update(samples(scrape(console)))
        return dict(last) if all(last.get(name, 0) >= 20 for name in flushed) else {}

    found = wait_for(handled, 90, lambda: f"20 messages counted by every process; last scrape: {last}")
    assert found[("drip_messages_handled_total", (("outcome", "handled"), ("route", "*")))] == 20, found
    assert found[("drip_messages_accepted_total", (("source", "enqueue"),))] == 20
    assert found[("drip_handler_duration_seconds_count", (("route", "*"),))] == 20
    assert found[("drip_lag_seconds_count", (("route", "*"),))] == 20
    assert found[("drip_lag_seconds_bucket", (("le", "+Inf"), ("route", "*")))] == 20
    assert found[("drip_webhook_requests_total", (("code", "202"), ("endpoint", "/enqueue")))] == 20
    assert found[("drip_workers", ())] >= 1
    assert found[("drip_messages", (("state", "dead"),))] == 0
    text = scrape(console)
    assert FAMILIES <= {f.name for f in text_string_to_metric_families(text)}
    checked = subprocess.run([promtool(), "check", "metrics"], input=text, capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_shipped_alert_rules_pass_promtool():
    """deploy/prometheus/alerts.yml is valid Prometheus rules."""
    checked = subprocess.run([promtool(), "check", "rules", str(ROOT / "deploy" / "prometheus" / "alerts.yml")],
                             capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_dashboard_and_the_alerts_use_only_metrics_drip_serves():
    """Every drip_* series deploy/ queries is one /metrics serves (a renamed metric breaks this, not a 3 a.m. page)."""
    import json
    import re

    served = FAMILIES | {"drip_leader"}
    dashboard = json.loads((ROOT / "deploy" / "grafana" / "drip.json").read_text())
    queries = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    queries.append((ROOT / "deploy" / "prometheus" / "alerts.yml").read_text())
    used = {re.sub(r"_(total|bucket|sum|count)$", "", name) for q in queries for name in re.findall(r"\bdrip_\w+", q)}
    assert used and used <= served, used - served
