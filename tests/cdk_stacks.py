"""Synthesizes the CDK app for the stack tests, from tiny stand-in inputs.

Each distinct configuration is synthesized once per test session (synthesis costs seconds
of jsii round trips) with cdk.json's feature flags and cdk-nag registered exactly as app.py
does, so every synthesis is also a cdk-nag check.
"""

from __future__ import annotations

import atexit
import json
import re
import shutil
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from aws_cdk import App, Stack
from aws_cdk.assertions import Template

from contract.layout import MODEL_SOURCE_DIR, PROJECT_ROOT
from stacks.compliance import apply_aws_solutions_checks
from stacks.config import SentimentConfig, load_config
from stacks.sentiment_app import SentimentStacks, build_stacks, gather_inputs

PROJECT_CONTEXT: dict[str, Any] = json.loads((PROJECT_ROOT / "cdk.json").read_text())["context"]


def write_prepared_data(directory: Path, *, unlabeled: bool = True) -> Path:
    channels = ["train", "validation", "test"] + (["unlabeled"] if unlabeled else [])
    for channel in channels:
        (directory / channel).mkdir(parents=True, exist_ok=True)
        (directory / channel / "reviews.bin").write_bytes(channel.encode() * 3)
    (directory / "manifest.json").write_text('{"format": 1}\n')
    return directory


def write_frontend(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "index.html").write_text("<!doctype html><title>test</title>\n")
    return directory


@dataclass(frozen=True)
class SynthesizedApp:
    app: App
    config: SentimentConfig
    stacks: SentimentStacks
    workdir: Path

    def template(self, name: str) -> Template:
        return Template.from_stack(getattr(self.stacks, name))

    def templates(self) -> dict[str, dict[str, Any]]:
        return {name: self.template(name).to_json() for name in ("storage", "model", "web")}


def context_with(**settings: Any) -> tuple[tuple[str, str], ...]:
    """``sentiment:`` settings as a hashable key (values JSON-encoded)."""
    return tuple(sorted((f"sentiment:{key}", json.dumps(value)) for key, value in settings.items()))


@cache
def synthesized(settings: tuple[tuple[str, str], ...] = ()) -> SynthesizedApp:
    workdir = Path(tempfile.mkdtemp(prefix="sentiment-cdk-test-"))
    atexit.register(shutil.rmtree, workdir, ignore_errors=True)
    context = {
        **PROJECT_CONTEXT,
        "sentiment:preparedDataDir": str(write_prepared_data(workdir / "prepared")),
        **{key: json.loads(value) for key, value in settings},
    }
    app = App(context=context, outdir=str(workdir / "cdk.out"))
    config = load_config(context, PROJECT_ROOT)
    inputs = gather_inputs(
        config,
        model_source_dir=MODEL_SOURCE_DIR,
        frontend_dir=write_frontend(workdir / "frontend"),
        build_dir=workdir / "build",
    )
    apply_aws_solutions_checks(app)
    stacks = build_stacks(app, config, inputs)
    app.synth()  # runs cdk-nag: raises on any unacknowledged finding
    return SynthesizedApp(app=app, config=config, stacks=stacks, workdir=workdir)


def resources(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == resource_type
    }


def only(template: dict[str, Any], resource_type: str) -> dict[str, Any]:
    found = list(resources(template, resource_type).values())
    assert len(found) == 1, f"expected one {resource_type}, found {len(found)}"
    return found[0]["Properties"]


def joined(value: Any) -> str:
    """A CloudFormation string with its tokens rendered as <...> placeholders."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(joined(part) for part in parts)
    return f"<{json.dumps(value, sort_keys=True)}>"


def training_request(template: dict[str, Any]) -> dict[str, Any]:
    """The CreateTrainingJob request the model stack's custom resource sends."""
    properties = only(template, "Custom::SageMakerTrainingJob")
    # Tokens become "<...>" placeholders; escape their quotes to keep the JSON parseable.
    text = re.sub(
        r"<(\{.*?\})>",
        lambda token: "<" + token.group(1).replace('"', "'") + ">",
        joined(properties["TrainingJobRequest"]),
    )
    return json.loads(text)


def role_statements(role: Any) -> list[dict[str, Any]]:
    """The statements of a role's default policy, as synthesized in the role's stack."""
    stack = Stack.of(role)
    policy = role.node.find_child("DefaultPolicy").node.default_child
    template = Template.from_stack(stack).to_json()
    return template["Resources"][stack.get_logical_id(policy)]["Properties"]["PolicyDocument"][
        "Statement"
    ]


def granted_actions(role: Any) -> dict[str, str]:
    """Each statement's actions (sorted, joined by +) → its resource, rendered."""
    return {
        "+".join(sorted(s["Action"])) if isinstance(s["Action"], list) else s["Action"]: joined(
            s["Resource"]
        )
        for s in role_statements(role)
    }
