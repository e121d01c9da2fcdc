"""The README tells the truth: its set-up commands are what CI runs, its configuration table is the code's."""

from __future__ import annotations

import re

from drip.core.settings import Settings
from tests.helpers import ROOT

README = (ROOT / "README.md").read_text()
CI = (ROOT / ".ci" / "run").read_text()


def shell_blocks() -> list[str]:
    return [block.strip() for block in re.findall(r"```sh\n(.*?)```", README, re.S)]


def test_setup_is_two_commands_and_ci_runs_them():
    """The first two shell blocks are install+`drip dev` and the tests; .ci/run installs and tests the same way."""
    install_and_run, run_tests = shell_blocks()[:2]
    assert install_and_run.endswith("drip dev")
    install = install_and_run.rsplit(" && ", 1)[0]
    assert install in CI
    assert run_tests in CI.splitlines()


def test_configuration_table_lists_every_setting():
    """Every DRIP_* variable the code reads is documented, and the table documents nothing else."""
    documented = set(re.findall(r"^\| `(DRIP_[A-Z_]+)` \|", README, re.M))
    assert documented == {f"DRIP_{name.upper()}" for name in Settings.model_fields}


def test_documented_defaults_match_the_code():
    """Each documented default that is a plain value equals the code's default."""
    rows = dict(re.findall(r"^\| `(DRIP_[A-Z_]+)` \| `([^`]*)` \|", README, re.M))
    for variable, shown in rows.items():
        default = Settings.model_fields[variable.removeprefix("DRIP_").lower()].default
        assert shown in (str(default), str(default).rstrip("0").rstrip("."), str(default).lower()), variable
