"""The webhook as a real process: a huge upload is cut off without growing memory; WhatsApp conversations
posted concurrently are each handled in order; several processes share its port."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
from collections import defaultdict

import pytest

from drip.core.keys import Keys
from drip.run import procs
from tests import rawhttp
from tests.helpers import drip_env, wait_for
from tests.sample_handlers import log_key, read_log
from tests.test_pipeline import post_queues
from tests.whatsapp_payloads import PHONE_NUMBER_ID, message, notification, sign

pytestmark = pytest.mark.slow


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def stream_upload(port: int, megabytes: int) -> tuple[bytes, int]:
    """POST a chunked body of `megabytes` MiB (no Content-Length); returns (the answer's first line, MiB sent)."""
    chunk = b"[" + b"0," * (512 * 1024 - 1) + b"0"  # ~1 MiB of JSON-looking bytes
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(b"POST /enqueue HTTP/1.1\r\nHost: drip\r\nContent-Type: application/json\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n")
    sent = 0
    try:
        for _ in range(megabytes):
            sock.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
            sent += 1
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server answered and closed: what we expect long before the end
    sock.settimeout(10)
    try:
        answer = sock.recv(4096)
    except (ConnectionResetError, TimeoutError):
        answer = b""
    sock.close()
    return answer.split(b"\r\n", 1)[0], sent


def test_a_200_mb_upload_is_cut_off_at_max_body_without_growing_memory(cluster):
    """A 200 MB chunked upload answers 413 once past DRIP_MAX_BODY; the server's RSS does not grow by its size."""
    cluster.start_web()
    pid = cluster.children["web"].pid
    port = int(cluster.web_url.rsplit(":", 1)[1])
    stream_upload(port, 2)  # warm up: first request allocations are not the upload's
    before = rss_kib(pid)
    first_line, sent_mib = stream_upload(port, 200)
    after = rss_kib(pid)
    assert first_line.startswith(b"HTTP/1.1 413"), first_line
    assert sent_mib < 200, "the server read the whole upload instead of cutting it off"
    assert after - before < 20 * 1024, f"RSS grew by {(after - before) // 1024} MiB"


async def post_conversations(url: str, secret: str, conversations: int, per: int) -> dict[str, list[str]]:
    """Each conversation's messages one after another (each its own signed notification); conversations at once."""
    sent: dict[str, list[str]] = defaultdict(list)
    async with rawhttp.pool(url, 16) as connections:
        async def one(c: int) -> None:
            sender = f"52155500{c:04d}"
            for n in range(per):
                wamid = f"wamid.{c}.{n}"
                body = notification(messages=[message(sender, wamid, f"m{n}")])
                status, answer = await rawhttp.post_raw(connections, "/hooks/whatsapp", body,
                                                        {"X-Hub-Signature-256": sign(secret, body)})
                assert status == 200 and answer["queued"] == 1, answer
                sent[f"wa:{PHONE_NUMBER_ID}:{sender}"].append(answer["ids"][0])

        await asyncio.gather(*(one(c) for c in range(conversations)))
    return sent


def test_50_whatsapp_conversations_of_20_messages_are_each_handled_in_order(cluster, r, settings):
    """50 conversations × 20 messages posted as WhatsApp notifications concurrently: each in order."""
    cluster.start_all(DRIP_WHATSAPP_APP_SECRET="app-secret")
    sent = asyncio.run(post_conversations(cluster.web_url, "app-secret", 50, 20))
    wait_for(lambda: r.llen(log_key(settings.prefix)) >= 2 * 1000, 120, "1,000 handled messages")
    handled: dict[str, list[str]] = defaultdict(list)
    for row in read_log(r, settings.prefix):
        if row["ev"] == "enter":
            handled[row["q"]].append(row["id"])
    assert handled == sent


def _stat(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (state first, then the parent's pid); None if gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None


def children_of(pid: int) -> list[int]:
    """Live (not zombie) child processes of `pid`."""
    stats = {int(e): _stat(int(e)) for e in os.listdir("/proc") if e.isdigit()}
    return [child for child, st in stats.items() if st and st[0] != "Z" and int(st[1]) == pid]


def alive(pid: int) -> bool:
    st = _stat(pid)
    return st is not None and st[0] != "Z"


def test_web_processes_answer_on_one_port_and_all_stop_on_sigterm(cluster, r, settings):
    """DRIP_WEB_PROCESSES=2: two processes answer on the one port, every accepted message is stored,
    and SIGTERM to `drip web` stops them all (none is left behind)."""
    cluster.start_web(DRIP_WEB_PROCESSES="2")
    parent = cluster.children["web"].pid
    wait_for(lambda: len(children_of(parent)) >= 2, 30, "two web processes under drip web")
    processes = children_of(parent)
    posted = asyncio.run(post_queues(cluster.web_url, 20, 10))
    keys = Keys(settings.prefix)
    assert {q: r.xlen(keys.stream(q)) for q in posted} == {q: 10 for q in posted}
    cluster.stop()
    assert cluster.children["web"].returncode == 0
    wait_for(lambda: not any(alive(pid) for pid in processes), 10, "no web process left behind")


def test_web_processes_on_a_port_another_program_holds_fail_with_a_message(settings):
    """`drip web --processes 2` on a taken port says so and exits, instead of restarting processes forever."""
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    port = holder.getsockname()[1]
    try:
        done = subprocess.run(procs.python_module("drip", "web", "--processes", "2", "--port", str(port)),
                              env=drip_env(settings), capture_output=True, text=True, timeout=60)
    finally:
        holder.close()
    assert done.returncode != 0
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr, done.stderr
