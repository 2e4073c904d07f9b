"""The real CLI: `npx cdk synth` with the pinned aws-cdk package, offline, without warnings.

Run `npm ci` first (it installs the CLI pinned in package-lock.json into node_modules/).
The CLI's and npm's homes and caches live in a temporary directory; nothing reaches AWS.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
from cdk_stacks import write_prepared_data

from contract.layout import PROJECT_ROOT

CDK_JSON = json.loads((PROJECT_ROOT / "cdk.json").read_text())
# Lines the CLI, npm or jsii print when something deserves attention.
WARNING = re.compile(r"warn|deprecat|notice|error|\[!\]|!!", re.IGNORECASE)


def node_major() -> str:
    version = subprocess.run(["node", "--version"], capture_output=True, text=True, check=True)
    return version.stdout.strip().lstrip("v").split(".")[0]


def isolated_environment(home: Path) -> dict[str, str]:
    npmrc = home / "npmrc"
    npmrc.write_text("")
    return {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "CDK_HOME": str(home / "cdk-home"),
        "NPM_CONFIG_USERCONFIG": str(npmrc),
        "NPM_CONFIG_CACHE": str(home / "npm-cache"),
        "NPM_CONFIG_UPDATE_NOTIFIER": "false",
        "NPM_CONFIG_FUND": "false",
        # jsii's documented switch for its banner on a Node release past end of life.
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": node_major(),
        # No credentials and no metadata service: synthesis must not need AWS.
        "AWS_ACCESS_KEY_ID": "",
        "AWS_SECRET_ACCESS_KEY": "",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": str(home / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "no-aws-credentials"),
    }


def test_cdk_json_turns_off_notices_and_telemetry() -> None:
    assert CDK_JSON["notices"] is False
    assert CDK_JSON["context"]["cli-telemetry"] is False
    assert CDK_JSON["context"]["@aws-cdk/core:target-partitions"] == ["aws", "aws-cn"]


def test_the_cli_is_pinned_exactly() -> None:
    package = json.loads((PROJECT_ROOT / "package.json").read_text())
    lock = json.loads((PROJECT_ROOT / "package-lock.json").read_text())
    pinned = package["devDependencies"]["aws-cdk"]

    assert re.fullmatch(r"2\.\d+\.\d+", pinned)
    assert lock["packages"]["node_modules/aws-cdk"]["version"] == pinned


def npx_cdk_synth(home: Path, *context: str) -> subprocess.CompletedProcess[str]:
    """`npx cdk synth` as the README runs it, with the given `--context key=value` pairs."""
    command = ["npx", "--no", "cdk", "synth", "--quiet", "--output", str(home / "cdk.out")]
    for pair in context:
        command += ["--context", pair]
    return subprocess.run(
        command,
        cwd=PROJECT_ROOT,
        env=isolated_environment(home),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


SHADOW_ON = (
    "sentiment:shadowDeployment=true",
    "sentiment:productionTrainingJob=imdb-sentiment-0123456789abcdef",
)


@pytest.mark.parametrize("settings", [(), SHADOW_ON], ids=["defaults", "shadow"])
def test_npx_cdk_synth_succeeds_offline_without_warnings(
    tmp_path: Path, settings: tuple[str, ...]
) -> None:
    cli = PROJECT_ROOT / "node_modules" / ".bin" / "cdk"
    assert cli.exists(), "run `npm ci` to install the pinned aws-cdk CLI"
    prepared = write_prepared_data(tmp_path / "prepared")

    result = npx_cdk_synth(tmp_path, f"sentiment:preparedDataDir={prepared}", *settings)

    printed = result.stdout + result.stderr
    assert result.returncode == 0, printed
    assert not [line for line in printed.splitlines() if WARNING.search(line)], printed
    for stack in ("Storage", "Model", "Web"):
        template = json.loads((tmp_path / "cdk.out" / f"{stack}.template.json").read_text())
        assert template["Resources"]


def test_synth_without_prepared_data_explains_what_to_run(tmp_path: Path) -> None:
    result = npx_cdk_synth(tmp_path, f"sentiment:preparedDataDir={tmp_path / 'missing'}")

    assert result.returncode != 0
    assert "run `sentiment prepare` first" in result.stderr


@pytest.mark.parametrize(
    "bad", ["sentiment:endpointMode=batch", "sentiment:endpontMode=serverless"]
)
def test_synth_rejects_bad_context_with_its_key(tmp_path: Path, bad: str) -> None:
    result = npx_cdk_synth(tmp_path, bad)

    assert result.returncode != 0
    assert bad.split("=")[0] in result.stderr


def test_synth_refuses_shadow_testing_on_a_serverless_endpoint(tmp_path: Path) -> None:
    prepared = write_prepared_data(tmp_path / "prepared")

    result = npx_cdk_synth(
        tmp_path,
        f"sentiment:preparedDataDir={prepared}",
        "sentiment:endpointMode=serverless",
        *SHADOW_ON,
    )

    assert result.returncode != 0
    assert "serverless endpoints support neither shadow variants" in result.stderr
