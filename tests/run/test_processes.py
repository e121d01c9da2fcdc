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

from drip.core.keys import Keys
from drip.run import dev as dev_module
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


#: drip dev's shutdown grace in these tests (DRIP_SHUTDOWN_GRACE_S): Ctrl-C must end it within this plus 5 s.
GRACE_S = 10


def ctrl_c_and_check_nothing_is_left(dev: subprocess.Popen, log_path) -> None:
    """Ctrl-C reaches the whole foreground process group; drip dev must stop everything it started, within the
    shutdown grace (+5 s), and no process may log a `critical` line on the way (a server gone before its users),
    nor die of it with a traceback."""
    children = descendants(dev.pid)
    assert children, "drip dev started no processes"
    os.killpg(dev.pid, signal.SIGINT)
    assert dev.wait(GRACE_S + 5) == 0
    wait_for(lambda: not any(alive(p) for p in children), 30, "every child of drip dev to exit")
    text = log_path.read_text()
    critical = [line for line in text.splitlines() if "critical" in line.lower()]
    assert not critical, critical[:3]
    assert "Traceback" not in text, "a process died of the Ctrl-C instead of stopping"


def dev_env(settings, **extra: str) -> dict[str, str]:
    return drip_env(settings, **{"DRIP_HANDLER": "", "DRIP_LOG_LEVEL": "info",
                                 "DRIP_SHUTDOWN_GRACE_S": str(GRACE_S), **extra})


def without_servers(env: dict[str, str]) -> dict[str, str]:
    """`env` without DRIP_REDIS_URL / DRIP_DATABASE_URL: what a newcomer's shell has."""
    return {k: v for k, v in env.items() if k not in ("DRIP_REDIS_URL", "DRIP_DATABASE_URL")}


def logged(log_path, event: str) -> list[dict]:
    """The JSON log lines of `event` in a log file."""
    found = []
    for line in log_path.read_text().splitlines():
        if f'"{event}"' in line:
            try:
                found.append(json.loads(line))
            except ValueError:
                continue
    return [e for e in found if e.get("event") == event]


def test_drip_dev_takes_the_seed_curl_example(settings, tmp_path):
    """`drip dev` on the configured servers: the seed's curl is dripped 60-300 s ahead; a quicker copy is handled."""
    dev, url = run_dev(dev_env(settings), tmp_path)
    try:
        wait_for(lambda: _answers(url), 60, "drip dev's webhook")
        handled = check_seed_contact(url, settings.database_url)
        ctrl_c_and_check_nothing_is_left(dev, tmp_path / "dev.log")
    finally:
        if dev.poll() is None:
            os.killpg(dev.pid, signal.SIGKILL)
    events = [json.loads(line) for line in (tmp_path / "dev.log").read_text().splitlines() if line.startswith("{")]
    assert any(e["event"] == "message_handled" and e.get("message_id") == handled for e in events)


def test_drip_dev_embedded_servers_are_found_by_commands_in_its_folder(settings, tmp_path):
    """`drip dev --embedded` writes .drip/env: `drip status` and `drip psql` in that folder, with no DRIP_*_URL set,
    reach its servers (and say so on stderr); the seed's curl works; Ctrl-C stops all, .drip/env goes with it."""
    env = without_servers(dev_env(settings))
    dev, url = run_dev(env, tmp_path, "--embedded")
    try:
        wait_for(lambda: _answers(url), 120, "drip dev's webhook on embedded servers")
        log = (tmp_path / "dev.log").read_text()
        assert "embedded_redis_started" in log and "embedded_postgres_started" in log
        local_env = (tmp_path / ".drip" / "env").read_text()
        assert "DRIP_REDIS_URL=redis://127.0.0.1:" in local_env and "DRIP_DATABASE_URL=postgresql://" in local_env
        answer = seed_curl(url)
        status = subprocess.run([sys.executable, "-m", "drip", "status"], env=env, cwd=tmp_path, capture_output=True,
                                text=True, check=True)
        assert any(line.startswith(answer["queue"]) for line in status.stdout.splitlines()), status.stdout
        assert "using DRIP_REDIS_URL, DRIP_DATABASE_URL from .drip/env" in status.stderr
        sql = f"SELECT count(*) FROM sequential_queue WHERE id = '{answer['id']}'"
        psql = [sys.executable, "-m", "drip", "psql", "-Atc", sql]
        wait_for(lambda: subprocess.run(psql, env=env, cwd=tmp_path, capture_output=True, text=True,
                                        check=False).stdout.strip() == "1",
                 60, "drip psql to see the contact's history row")
        ctrl_c_and_check_nothing_is_left(dev, tmp_path / "dev.log")
        assert not using(tmp_path), "the embedded servers must stop with drip dev"
        assert not (tmp_path / ".drip" / "env").exists(), "drip dev removes .drip/env when its servers stop"
    finally:
        if dev.poll() is None:
            os.killpg(dev.pid, signal.SIGKILL)
        for pid in using(tmp_path):  # PostgreSQL daemonizes: it is nobody's child
            os.kill(pid, signal.SIGKILL)


def test_ctrl_c_stops_drip_dev_on_embedded_servers_within_the_grace(settings, tmp_path):
    """Ctrl-C (SIGINT to the terminal's process group) after a contact was handled on embedded servers: the
    servers, in sessions of their own, outlive drip's processes; all ends within the grace, no `critical` line."""
    env = without_servers(dev_env(settings, DRIP_HANDLER="tests.sample_handlers:record"))
    dev, url = run_dev(env, tmp_path, "--embedded")
    try:
        wait_for(lambda: _answers(url), 120, "drip dev's webhook on embedded servers")
        groups = process_groups(using(tmp_path))
        assert groups and dev.pid not in groups, "the servers run in process groups of their own"
        seed_curl(url, "0 to 0")
        wait_for(lambda: logged(tmp_path / "dev.log", "message_handled"), 60, "a contact handled")
        ctrl_c_and_check_nothing_is_left(dev, tmp_path / "dev.log")
        assert not using(tmp_path), "the embedded servers must stop with drip dev"
    finally:
        if dev.poll() is None:
            os.killpg(dev.pid, signal.SIGKILL)
        for pid in using(tmp_path):
            os.kill(pid, signal.SIGKILL)


def test_drip_dev_replaces_a_killed_web_process(settings, tmp_path):
    """SIGKILL drip dev's web child: drip dev says it replaced it and the webhook answers again."""
    import httpx

    dev, url = run_dev(dev_env(settings), tmp_path)
    try:
        wait_for(lambda: _answers(url), 60, "drip dev's webhook")
        (started,) = logged(tmp_path / "dev.log", "dev_started")
        web = started["pids"]["web"]
        os.kill(web, signal.SIGKILL)
        (replaced,) = wait_for(lambda: logged(tmp_path / "dev.log", "dev_process_replaced"), 30, "web replaced")
        assert replaced["process"] == "web" and replaced["replaced"] == web and replaced["pid"] != web
        wait_for(lambda: _answers(url), 60, "the new web process to answer")
        assert httpx.post(url + "/enqueue", json={"queue": "after-kill", "payload": 1}, timeout=5).status_code == 202
        ctrl_c_and_check_nothing_is_left(dev, tmp_path / "dev.log")
    finally:
        if dev.poll() is None:
            os.killpg(dev.pid, signal.SIGKILL)


def test_drip_dev_stops_naming_a_child_that_keeps_dying(settings, tmp_path):
    """A worker that cannot start (DRIP_HANDLER names no module) dies right after each start: drip dev gives up
    after a few tries, exit 1, with a message naming `drip worker`."""
    dev, _ = run_dev(dev_env(settings, DRIP_HANDLER="no_such_module:handle"), tmp_path)
    try:
        assert dev.wait(90) == 1
        log = (tmp_path / "dev.log").read_text()
        assert "drip dev: `drip worker` died 3 times in a row" in log
        (gave_up,) = logged(tmp_path / "dev.log", "dev_process_keeps_dying")
        assert gave_up["process"] == "worker"
        replaced = [e["process"] for e in logged(tmp_path / "dev.log", "dev_process_replaced")]
        assert len(replaced) >= dev_module.QUICK_DEATHS - 1 and set(replaced) == {"worker"}
    finally:
        if dev.poll() is None:
            os.killpg(dev.pid, signal.SIGKILL)


def process_groups(pids: list[int]) -> set[int]:
    """The process groups of those of `pids` still running."""
    groups = set()
    for pid in pids:
        try:
            groups.add(os.getpgid(pid))
        except ProcessLookupError:
            continue
    return groups


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
        members = lambda: {m.decode() for m in r.zrange(Keys(settings.prefix).workers(), 0, -1)}  # noqa: E731
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
    """supervisord with the shipped config, unchanged, from the venv (DRIP_BIN, DRIP_HOST, DRIP_PORT as README
    says, no venv on PATH): web, supervisor, worker and console run, a contact is handled, the console asks
    for its token; SIGTERM stops all."""
    port = free_port()
    console_port = free_port()
    venv_bin = os.path.dirname(sys.executable)
    env = drip_env(settings, DRIP_HANDLER="", DRIP_BIN=os.path.join(venv_bin, "drip"), DRIP_HOST="127.0.0.1",
                   DRIP_PORT=str(port), PATH=os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep)
                                                             if p != venv_bin),
                   DRIP_CONSOLE_PORT=str(console_port), DRIP_CONSOLE_TOKENS="sd-token:viewer")
    log = open(tmp_path / "supervisord.log", "ab")
    sd = subprocess.Popen([os.path.join(venv_bin, "supervisord"), "-c", str(ROOT / "supervisord.conf")], env=env,
                          cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: _answers(url), 60, lambda: f"the web program; supervisord said {_tail(tmp_path)}")
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


def _tail(folder) -> str:
    return (folder / "supervisord.log").read_text()[-2000:]
