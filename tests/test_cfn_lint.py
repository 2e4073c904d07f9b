"""cfn-lint, AWS's CloudFormation linter, on every synthesized template in both endpoint modes,
and with shadow testing on.

Errors (E) fail the test; warnings (W) are listed by rule when the test fails, so a new kind
shows up in review. The templates are the cdk_stacks syntheses, cdk-nag included.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cdk_stacks import context_with, synthesized

MODES = {
    "realtime": (),
    "serverless": context_with(endpointMode="serverless", removalPolicy="destroy"),
    "shadow": context_with(
        shadowDeployment=True, productionTrainingJob="imdb-sentiment-0123456789abcdef"
    ),
}


@pytest.mark.parametrize("mode", sorted(MODES))
def test_every_template_passes_cfn_lint_without_errors(mode: str, tmp_path: Path) -> None:
    app = synthesized(MODES[mode])
    paths = []
    for name, template in app.templates().items():
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(template))
        paths.append(str(path))

    linted = subprocess.run(
        [str(Path(sys.executable).with_name("cfn-lint")), "--format", "json", "--", *paths],
        capture_output=True,
        text=True,
        check=False,
    )

    findings = json.loads(linted.stdout or "[]")
    errors = [
        f"{finding['Filename']}: {finding['Rule']['Id']} {finding['Message']}"
        for finding in findings
        if finding["Level"] == "Error"
    ]
    assert linted.stderr == "", linted.stderr
    assert errors == [], "\n".join(errors)
