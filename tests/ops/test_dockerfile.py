"""The container image definition: hadolint-clean, multi-stage, non-root, exec-form `gleaner` entrypoint."""

from __future__ import annotations

import json
import re

from tests.ops.tools import ROOT, assert_ok, run, tool

DOCKERFILE = ROOT / "Dockerfile"


def _instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "") for line in lines]


def test_the_dockerfile_passes_hadolint() -> None:
    assert_ok(run(tool("hadolint"), "--failure-threshold", "info", DOCKERFILE))


def test_the_image_is_built_in_one_stage_and_runs_from_a_slim_python_3_11_in_another() -> None:
    instructions = _instructions()
    stages = [args.split()[0] for name, args in instructions if name == "FROM"]
    assert len(stages) >= 2, stages
    defaults = dict(args.split("=", 1) for name, args in instructions if name == "ARG" and "=" in args)
    runtime = re.sub(r"\$\{(\w+)\}", lambda m: defaults[m.group(1)], stages[-1])
    assert runtime.startswith("python:3.11") and "slim" in runtime, runtime


def test_the_image_runs_as_a_numeric_non_root_user() -> None:
    users = [args for name, args in _instructions() if name == "USER"]
    assert users, "no USER instruction"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0, users[-1]


def test_the_entrypoint_is_the_gleaner_command_in_exec_form_and_defaults_to_the_gateway() -> None:
    instructions = dict(_instructions())
    assert json.loads(instructions["ENTRYPOINT"]) == ["gleaner"]
    assert json.loads(instructions["CMD"]) == ["gateway"]


def test_the_image_exposes_the_three_service_ports() -> None:
    exposed = {port for name, args in _instructions() if name == "EXPOSE" for port in args.split()}
    assert {"8080", "8081", "8082"} <= exposed


def test_the_build_context_leaves_out_local_environments_and_tests() -> None:
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    assert "**" in ignore and "!gleaner/" in ignore
