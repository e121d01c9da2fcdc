"""drip's commands run as a user runs them: `drip dev`, `drip worker`'s pool, `drip status`."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys

import psycopg
import pytest

from drip.run import procs
from tests.helpers import ROOT, drip_env, free_port, wait_for

pytestmark = pytest.mark.slow

#: The seed's verification command, verbatim but for the host (ghl-drip-server-redis-streams.md).
SEED_CURL = """curl -X POST https://ghl-drip-server.vercel.app/api/enqueue-contact \\
     -H "Content-Type: application/json" \\
     -d '{"contact_id":"test123","location":{"id":"456"},"workflow":{"id":"humanizer"},"customData":{"TimeFrame":"60 to 300"}}'"""


def seed_curl(base_url: str, timeframe: str | None = None) -> dict:
    """Run the seed's curl against `base_url`. With `timeframe`, a copy for another workflow (the seed's own
    chain already reaches minutes ahead) with that TimeFrame instead of "60 to 300", to see one handled quickly."""
    command = SEED_CURL.replace("https://ghl-drip-server.vercel.app", base_url)
    if timeframe is not None:
        command = command.replace('"60 to 300"', json.dumps(timeframe)).replace('"humanizer"', '"quick"')
    out = subprocess.run(command, shell=True, check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def history_status(database_url: str, message_id: str) -> str | None:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT status FROM sequential_queue WHERE id = %s", (message_id,)).fetchone()
    return row[0] if row else None


def check_seed_contact(url: str, database_url: str) -> str:
    """The verbatim seed curl is scheduled 60-300 s ahead in its queue; a copy with a short TimeFrame is handled."""
    answer = seed_curl(url)
    assert answer["queue"] == "location:456:workflow:humanizer"
    wait_for(lambda: history_status(database_url, answer["id"]) == "scheduled", 60, "the contact recorded scheduled")
    with psycopg.connect(database_url) as conn:
        (ahead_s,) = conn.execute(
            "SELECT extract(epoch FROM run_at - enqueued_at) FROM sequential_queue WHERE id = %s", (answer["id"],)
        ).fetchone()
    assert 60 <= ahead_s <= 300
    quick = seed_curl(url, "0.1 to 0.2")
    wait_for(lambda: history_status(database_url, quick["id"]) == "done", 60, "the contact handled")
    return quick["id"]


def descendants(pid: int) -> set[int]:
    """Live processes below `pid` (read from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            children.setdefault(ppid, []).append(int(entry))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def run_dev(env: dict, cwd, *extra: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    log = open(cwd / "dev.log", "ab")
    env = {**env, "DRIP_CONSOLE_PORT": str(free_port())}  # its console, open on loopback, on a port of its own
    dev = subprocess.Popen([sys.executable, "-m", "drip", "dev", "--port", str(port), *extra], env=env, cwd=cwd,
                           stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    return dev, f"http://127.0.0.1:{port}"


def ctrl_c_and_check_nothing_is_left(dev: subprocess.Popen) -> None:
    """Ctrl-C reaches the whole foreground process group; drip dev must stop everything it started."""
    children = descendants(dev.pid)
    assert children, "drip dev started no processes"
    os.killpg(dev.pid, signal.SIGINT)
    assert dev.wait(60) == 0
    wait_for(lambda: not any(alive(p) for p in children), 30, "every child of drip dev to exit")


def test_drip_dev_takes_the_seed_curl_example(settings, tmp_path):
    """`drip dev` on the configured servers: the seed's curl is dripped 60-300 s ahead; a quicker copy is handled."""
    env = drip_env(settings, DRIP_HANDLER="", DRIP_LOG_LEVEL="info")
    dev, url = run_dev(env, tmp_path)
    try:
        wait_for(lambda: _answers(url), 60, "drip dev's webhook")
        handled = check_seed_contact(url, settings.database_url)
        ctrl_c_and_check_nothing_is_left(dev)
    finally:
        if dev.poll() is None:
            os.killpg(dev.pid, signal.SIGKILL)
    logged = (tmp_path / "dev.log").read_text()
    assert '"event": "message_handled"' in logged and handled in logged


def test_drip_dev_starts_embedded_servers_when_there_are_none(settings, tmp_path):
    """`drip dev --embedded` (what happens with no Redis/PostgreSQL around) runs Valkey and PostgreSQL from wheels."""
    env = drip_env(settings, DRIP_HANDLER="", DRIP_LOG_LEVEL="info")
    for name in ("DRIP_REDIS_URL", "DRIP_DATABASE_URL"):
        env.pop(name)
    dev, url = run_dev(env, tmp_path, "--embedded")
    try:
        wait_for(lambda: _answers(url), 120, "drip dev's webhook on embedded servers")
        log = (tmp_path / "dev.log").read_text()
        assert "embedded_redis_started" in log and "embedded_postgres_started" in log
        check_seed_contact(url, f"postgresql://postgres:@/drip?host={tmp_path / '.drip' / 'pg'}")
        ctrl_c_and_check_nothing_is_left(dev)
        assert not using(tmp_path), "the embedded servers must stop with drip dev"
    finally:
        if dev.poll() is None:
            os.killpg(dev.pid, signal.SIGKILL)
        for pid in using(tmp_path):  # PostgreSQL daemonizes: it is nobody's child
            os.kill(pid, signal.SIGKILL)


def using(folder) -> list[int]:
    """Live processes whose command line mentions `folder` (the embedded servers' data)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and alive(int(entry)):
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    if str(folder).encode() in f.read():
                        found.append(int(entry))
            except OSError:
                continue
    return found


def _status(url: str, headers: dict | None = None) -> int | None:
    import httpx

    try:
        return httpx.get(url, headers=headers, timeout=2).status_code
    except httpx.HTTPError:
        return None


def _answers(url: str) -> bool:
    import httpx

    try:
        return httpx.get(url + "/readyz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_worker_pool_replaces_a_killed_process(settings, r, tmp_path):
    """SIGKILL one of `drip worker`'s processes: the pool starts another and keeps its size."""
    pool = procs.spawn(procs.python_module("drip", "worker"), drip_env(settings), stdout=subprocess.DEVNULL)
    try:
        members = lambda: {m.decode() for m in r.zrange(f"{settings.prefix}:workers", 0, -1)}  # noqa: E731
        first = wait_for(lambda: members() if len(members()) == 2 else None, 30, "two worker processes")
        victim = int(sorted(first)[0].split(":")[1])
        os.kill(victim, signal.SIGKILL)
        after = wait_for(lambda: members() - first, 30, "a replacement process to announce itself")
        assert len(after) == 1
        survivor = int(sorted(first)[1].split(":")[1])
        assert alive(survivor), "killing one process must not stop the others"
    finally:
        procs.stop_all([pool], 20)


def test_status_lists_queues_with_their_counts(settings, store, tmp_path):
    """`drip status` shows each queue's ready, in-flight and scheduled counts and next run_at; --json for scripts."""
    from drip.core.messages import Inbound, iso, new_id
    from drip.core.timing import Timing
    from tests.helpers import put

    put(store, "orders", 3)
    later = store.queues.enqueue([Inbound(new_id(), "orders", b"1", Timing("delay", 600_000))])[0]
    env = drip_env(settings)
    text = subprocess.run([sys.executable, "-m", "drip", "status"], env=env, capture_output=True, text=True, check=True)
    line = next(l for l in text.stdout.splitlines() if l.startswith("orders"))
    assert shlex.split(line)[1:5] == ["3", "0", "1", iso(later.run_at_ms)]
    raw = subprocess.run([sys.executable, "-m", "drip", "status", "--json"], env=env, capture_output=True, text=True,
                         check=True).stdout
    queues = {q["queue"]: q for q in json.loads(raw)["queues"]}
    assert queues["orders"]["ready"] == 3 and queues["orders"]["in_flight"] == 0
    assert queues["orders"]["scheduled"] == 1 and queues["orders"]["next_run_at_ms"] == later.run_at_ms


def test_cancel_command(settings, store):
    """`drip cancel ID` cancels a scheduled message; an unknown id is one line on stderr and exit 1."""
    from drip.core.messages import Inbound, new_id
    from drip.core.timing import Timing

    later = store.queues.enqueue([Inbound(new_id(), "q", b"1", Timing("delay", 600_000))])[0]
    env = drip_env(settings)
    done = subprocess.run([sys.executable, "-m", "drip", "cancel", later.id], env=env, capture_output=True, text=True)
    assert done.returncode == 0 and later.id in done.stdout
    assert store.client.zcard(store.keys.delayed("q")) == 0
    unknown = subprocess.run([sys.executable, "-m", "drip", "cancel", new_id()], env=env, capture_output=True, text=True)
    assert unknown.returncode == 1 and unknown.stderr.startswith("drip: error: no message")


def test_root_is_where_tests_expect(tmp_path):
    """The suite runs from the checkout (tests import drip's test handlers by path)."""
    assert (ROOT / "drip" / "__init__.py").exists()


def test_supervisord_conf_runs_the_four_programs(settings, tmp_path):
    """supervisord with the shipped config runs web, supervisor, worker and console; a contact is handled; the
    console asks for its token; SIGTERM stops all."""
    port = free_port()
    conf = (ROOT / "supervisord.conf").read_text()
    conf = conf.replace("--port 8000", f"--port {port}").replace("/tmp/drip-supervisord", str(tmp_path / "sd"))
    (tmp_path / "supervisord.conf").write_text(conf)
    console_port = free_port()
    env = drip_env(settings, DRIP_HANDLER="", PATH=f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}",
                   DRIP_CONSOLE_PORT=str(console_port), DRIP_CONSOLE_TOKENS="sd-token:viewer")
    log = open(tmp_path / "supervisord.log", "ab")
    sd = subprocess.Popen([os.path.join(os.path.dirname(sys.executable), "supervisord"), "-c",
                           str(tmp_path / "supervisord.conf")], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: _answers(url), 60, "the web program")
        check_seed_contact(url, settings.database_url)
        console = f"http://127.0.0.1:{console_port}/api/overview"
        wait_for(lambda: _status(console) == 401, 60, "the console program")
        assert _status(console, {"Authorization": "Bearer sd-token"}) == 200
        programs = descendants(sd.pid)
        sd.send_signal(signal.SIGTERM)
        assert sd.wait(90) == 0
        wait_for(lambda: not any(alive(p) for p in programs), 30, "every program to stop")
    finally:
        # supervisord's programs do not die with it: on a failure, stop them too.
        leftovers = descendants(sd.pid) if sd.poll() is None else set()
        procs.stop_all([sd], 60)
        for pid in leftovers:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
