"""schemathesis checks a real `drip web` against its own /openapi.json (every check, every phase): schema-valid
requests are accepted, schema-invalid ones refused, declared auth enforced, 405s carry `Allow` — with
authentication off (the local default) and on."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

#: Bounded, so a run takes about a minute a configuration on two shared cores; a fixed seed repeats it.
MAX_EXAMPLES = "40"


def schemathesis_run(url: str, folder: Path, *extra: str) -> subprocess.CompletedProcess:
    command = [str(Path(sys.executable).parent / "schemathesis"), "run", f"{url}/openapi.json", "--checks", "all",
               "--phases", "examples,coverage,fuzzing,stateful", "--max-examples", MAX_EXAMPLES, "--seed", "1",
               "--no-color", *extra]
    # Its own folder: schemathesis keeps a cache and a Hypothesis database in the working directory.
    return subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=600, check=False)


BEARER = ("--header", "Authorization: Bearer T")
#: Every credential drip checks (schemathesis can send the token; the signatures it cannot make are refused).
EVERYTHING = {"DRIP_API_TOKENS": "T", "DRIP_SIGNING_SECRET": "S", "DRIP_WHATSAPP_APP_SECRET": "W",
              "DRIP_RATE_LIMIT": "100/s:300"}


@pytest.mark.slow
@pytest.mark.parametrize(("env", "args"), [({}, ()), ({"DRIP_API_TOKENS": "T"}, BEARER), (EVERYTHING, BEARER)],
                         ids=["auth-off", "auth-on", "signatures-and-rate-limit"])
def test_the_api_matches_its_openapi_description(cluster, tmp_path, env, args):
    """`schemathesis run --checks all` finds no failure: auth off, a bearer token, every check and a rate limit."""
    url = cluster.start_web(**env)
    result = schemathesis_run(url, tmp_path, *args)
    report = result.stdout + result.stderr
    assert result.returncode == 0, report[-6000:]
    assert " passed" in report and "failure" not in report.split("SUMMARY")[-1], report[-6000:]
