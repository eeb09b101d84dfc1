"""Every YAML file of the deployment passes yamllint with the repository's .yamllint.yaml."""

from __future__ import annotations

from tests.ops.tools import ROOT, assert_ok, run, tool


def test_compose_and_every_deploy_yaml_file_pass_yamllint() -> None:
    files = [ROOT / ".yamllint.yaml", ROOT / "compose.yaml", ROOT / "deploy"]
    assert_ok(run(tool("yamllint"), "--strict", "-f", "parsable", "-c", ROOT / ".yamllint.yaml", *files))
