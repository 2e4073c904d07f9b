#!/usr/bin/env python3
"""The CDK app: `npx cdk synth` / `npx cdk deploy --all` (see the README).

Settings come from the `sentiment:` keys in cdk.json's context (stacks/config.py). The
prepared dataset must exist (`sentiment prepare`): it is hashed into the training job's name
and uploaded at deployment, so synthesis stops with a message instead of deploying without it.
"""

from __future__ import annotations

import sys

from aws_cdk import App

from contract.layout import MODEL_SOURCE_DIR, PROJECT_ROOT
from stacks.compliance import apply_aws_solutions_checks
from stacks.config import ConfigError, load_config
from stacks.sentiment_app import FrontendMissing, build_stacks, gather_inputs
from stacks.storage import PreparedDataMissing


def main() -> int:
    app = App()
    try:
        config = load_config(app.node.get_all_context(), PROJECT_ROOT)
        inputs = gather_inputs(
            config,
            model_source_dir=MODEL_SOURCE_DIR,
            frontend_dir=PROJECT_ROOT / "frontend",
            build_dir=PROJECT_ROOT / "build",
        )
    except (ConfigError, PreparedDataMissing, FrontendMissing) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    apply_aws_solutions_checks(app)
    build_stacks(app, config, inputs)
    app.synth()
    return 0


if __name__ == "__main__":
    sys.exit(main())
