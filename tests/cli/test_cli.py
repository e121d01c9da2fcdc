"""The `drip` command as a newcomer meets it: help with examples, settings shown with their origin, mistakes
said in one line, and no traceback when its output is cut short."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys

import pytest

from drip.cli import main as cli
from tests.helpers import ROOT, drip_env, wait_for

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without any DRIP_* variable, plus `extra`."""
    return {**{k: v for k, v in os.environ.items() if not k.startswith("DRIP_")},
            "PYTHONPATH": str(ROOT), **extra}


def drip(*args: str, env: dict[str, str], cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "drip", *args], env=env, cwd=cwd, capture_output=True, text=True,
                          check=False, timeout=60)


def subcommands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """(command path, parser) of every subcommand, nested ones included."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*path, name), sub
                yield from subcommands(sub, (*path, name))


def test_every_subcommand_help_says_what_it_does_its_arguments_and_an_example():
    """Each `drip ... --help` has a description, help for every argument, and an example starting with drip."""
    found = list(subcommands(cli.build_parser()))
    assert len(found) > 10
    for path, parser in found:
        assert parser.description, path
        assert parser.epilog and parser.epilog.startswith("example:\n  drip "), path
        for action in parser._actions:
            if not isinstance(action, argparse._SubParsersAction):
                assert action.help, (path, action.dest)


def test_a_closed_pipe_is_no_traceback():
    """`drip config | head -1`: the reader gone before drip writes gives no traceback."""
    read, write = os.pipe()
    os.close(read)
    try:
        done = subprocess.run([sys.executable, "-m", "drip", "config"], env=clean_env(), stdout=write,
                              stderr=subprocess.PIPE, text=True, timeout=60, check=False)
    finally:
        os.close(write)
    assert "Traceback" not in done.stderr and done.stderr == ""
    assert done.returncode == 1


def test_a_misspelt_variable_is_warned_about_with_the_closest_setting():
    """DRIP_MAXATTEMPTS=3 is not ignored silently: one warning names it and suggests DRIP_MAX_ATTEMPTS."""
    done = drip("config", env=clean_env(DRIP_MAXATTEMPTS="3", DRIP_TEST_REDIS_URL="redis://x"))
    assert done.returncode == 0
    assert done.stderr.splitlines() == [
        "drip: warning: DRIP_MAXATTEMPTS is not a drip setting and is ignored; did you mean DRIP_MAX_ATTEMPTS?"]


@pytest.mark.parametrize(("variable", "value", "expected"), [
    ("DRIP_REDIS_URL", "http://127.0.0.1:6379", "redis://host:port/db"),
    ("DRIP_REDIS_URL", "notaurl", "redis://host:port/db"),
    ("DRIP_DATABASE_URL", "mysql://x", "postgresql://user@host:port/database"),
])
def test_a_wrong_url_is_one_line_naming_the_variable_and_the_expected_form(variable, value, expected):
    """A URL of the wrong kind stops `drip status` with one line (the variable, the expected form), exit 1."""
    done = drip("status", env=clean_env(**{variable: value}))
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    (line,) = done.stderr.splitlines()
    assert variable in line and expected in line and value in line


def test_config_shows_each_setting_its_origin_and_masks_secrets(tmp_path):
    """`drip config`: env, .drip/env and default origins; tokens and URL passwords masked."""
    (tmp_path / ".drip").mkdir()
    (tmp_path / ".drip" / "env").write_text("# written by drip dev\nDRIP_REDIS_URL=redis://127.0.0.1:6390/0\n")
    env = clean_env(DRIP_API_TOKENS="s3cret-token", DRIP_DATABASE_URL="postgresql://me:pa55word@db:5432/drip",
                    DRIP_MAX_ATTEMPTS="7")
    done = drip("config", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    rows = {line.split()[0]: line.split() for line in done.stdout.splitlines()[1:]}
    assert rows["DRIP_MAX_ATTEMPTS"][1:] == ["7", "env"]
    assert rows["DRIP_REDIS_URL"][1:] == ["redis://127.0.0.1:6390/0", ".drip/env"]
    assert rows["DRIP_THREADS"][1:] == ["8", "default"]
    assert rows["DRIP_API_TOKENS"][1:] == ["****", "env"]
    assert rows["DRIP_DATABASE_URL"][1] == "postgresql://me:****@db:5432/drip"
    assert "s3cret" not in done.stdout and "pa55word" not in done.stdout
    assert "using DRIP_REDIS_URL from .drip/env" in done.stderr


def test_the_environment_wins_over_drip_env(tmp_path):
    """A DRIP_REDIS_URL in the environment is used over .drip/env's, and nothing is said about the file."""
    (tmp_path / ".drip").mkdir()
    (tmp_path / ".drip" / "env").write_text("DRIP_REDIS_URL=redis://127.0.0.1:6390/0\n")
    done = drip("config", env=clean_env(DRIP_REDIS_URL="redis://127.0.0.1:6391/0"), cwd=tmp_path)
    assert "redis://127.0.0.1:6391/0" in done.stdout and "6390" not in done.stdout
    assert done.stderr == ""


def test_status_watch_redraws_until_ctrl_c(settings):
    """`drip status --watch 0.2` prints the view again and again; Ctrl-C ends it with exit 0."""
    watch = subprocess.Popen([sys.executable, "-m", "drip", "status", "--watch", "0.2"], env=drip_env(settings),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        headers = 0

        def two_views() -> bool:
            nonlocal headers
            line = watch.stdout.readline()
            headers += line.startswith("every 0.2 s")
            return headers >= 2

        wait_for(two_views, 30, "two views of drip status --watch")
        watch.send_signal(signal.SIGINT)
        assert watch.wait(30) == 0
        assert "Traceback" not in watch.stderr.read()
    finally:
        if watch.poll() is None:
            watch.kill()


def test_a_stale_drip_env_is_named_when_its_redis_is_gone(tmp_path):
    """.drip/env left by a drip dev that was killed: the error says where the dead address came from."""
    from tests.helpers import free_port

    (tmp_path / ".drip").mkdir()
    (tmp_path / ".drip" / "env").write_text(f"DRIP_REDIS_URL=redis://127.0.0.1:{free_port()}/0\n")
    done = drip("status", env=clean_env(), cwd=tmp_path)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "cannot reach Redis" in done.stderr and "it came from .drip/env" in done.stderr
