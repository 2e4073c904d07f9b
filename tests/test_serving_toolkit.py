"""The model artifact served by AWS's own PyTorch serving stack, answering as the emulator does.

SageMaker's PyTorch inference containers run ``sagemaker-pytorch-inference``'s ``serve``: it
writes a TorchServe configuration, installs ``code/requirements.txt`` if the model has one
(this one has none) and starts TorchServe (Java) with the artifact unpacked in /opt/ml/model.
Here the same ``serve`` runs from a virtual environment of its own
(tests/toolkit_environments.py) on loopback, with SAGEMAKER_BASE_DIR pointing at a temporary
/opt/ml; only the configuration file's path, fixed at /etc/sagemaker-ts.properties in the
toolkit, is moved into that directory. As behind network isolation, no package index can be
reached, and the packages preprocess.py imports are hidden from every process of the
container: the model must serve with the copies in its code/vendor/. The endpoint emulator,
which hosts the sagemaker-inference Transformer around the same code/inference.py, must
answer every request below exactly as the container does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

import httpx
import pytest
from model_artifacts import write_model_dir
from toolkit_environments import toolkit_environment

from contract.limits import MAX_REVIEW_CHARS
from contract.packaging import build_tarball
from sentiment import endpoint_emulator
from sentiment.model_slot import ModelSlot

pytestmark = pytest.mark.slow

TOOLKIT = ("sagemaker-pytorch-inference==2.0.25", "torchserve==0.12.0")
START_SECONDS = 180
# The toolkit's own entry point, with the configuration file moved off /etc.
SERVE = """
import sys
from sagemaker_pytorch_serving_container import serving, torchserve
torchserve.TS_CONFIG_FILE = sys.argv[1]
serving.main()
"""
JSON = "application/json"
# Hidden in the container's processes (not typing_extensions: torch imports it first, and the
# serving image has it).
HIDDEN = ("bs4", "nltk", "soupsieve")
# Loaded at every interpreter start by a .pth file, active with the variable set: the hidden
# packages are found only in a folder named vendor.
HIDE_PACKAGES = """
import importlib.abc, importlib.machinery, os, sys

class HidePackages(importlib.abc.MetaPathFinder):
    hidden = set(os.environ.get("HIDE_PACKAGES", "").split(","))

    def find_spec(self, name, path=None, target=None):
        if path is not None or name not in self.hidden:
            return None
        vendored = [entry for entry in sys.path if entry.endswith("/vendor")]
        spec = importlib.machinery.PathFinder.find_spec(name, vendored)
        if spec is None:
            raise ModuleNotFoundError(f"No module named {name!r} (hidden)", name=name)
        return spec

if os.environ.get("HIDE_PACKAGES"):
    sys.meta_path.insert(0, HidePackages())
"""


class Case(NamedTuple):
    body: bytes
    content_type: str | None = JSON
    accept: str | None = None


def review(text: str) -> bytes:
    return json.dumps({"review": text}).encode()


CASES = {
    "praise": Case(review("A wonderful, brilliant film.")),
    "scorn": Case(review("An awful, boring film.")),
    "no known word": Case(review("Zxq vbn.")),
    "negated praise": Case(review("The film was not wonderful at all.")),
    "one word": Case(review("superb")),
    "unicode": Case(review("Wonderful 🎬 — très bien, 素晴らしい.")),
    "at the limit": Case(review("a" * MAX_REVIEW_CHARS)),
    "charset parameter": Case(review("A superb story."), "application/json; charset=utf-8"),
    "accept json": Case(review("A superb story."), JSON, JSON),
    "accept anything": Case(review("A superb story."), JSON, "*/*"),
    "over the limit": Case(review("a" * (MAX_REVIEW_CHARS + 1))),
    "empty review": Case(review("")),
    "whitespace review": Case(review(" \n\t ")),
    "invalid JSON": Case(b'{"review": "unfinished'),
    "JSON array": Case(b'["a review"]'),
    "no review member": Case(b'{"text": "A superb story."}'),
    "extra member": Case(b'{"review": "A superb story.", "stars": 5}'),
    "review not a string": Case(b'{"review": 5}'),
    "deeply nested JSON": Case(b"[" * 100_000 + b"]" * 100_000),
    "lone surrogate": Case(b'{"review": "\\ud800 superb"}'),
    # The toolkit decodes JSON before the handlers: its own failure, 500 (README, Known limits).
    "not UTF-8": Case(b'{"review": "caf\xe9 superb"}'),
    "plain text": Case(b"A superb story.", "text/plain"),
    "CSV": Case(b"A superb story.", "text/csv"),
    "accept CSV": Case(review("A superb story."), JSON, "text/csv"),
}


class Answer(NamedTuple):
    status: int
    content_type: str
    body: str


def answer(response: httpx.Response) -> Answer:
    """Status, media type and body; of an error, its message (the traceback's paths differ)."""
    media_type = response.headers.get("content-type", "").split(";")[0]
    body = response.text if response.is_success else response.text.split("\n", 1)[0]
    return Answer(response.status_code, media_type, body)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def headers(case: Case) -> dict[str, str]:
    sent = {"Content-Type": case.content_type, "Accept": case.accept}
    return {name: value for name, value in sent.items() if value}


def post(client: httpx.Client, case: Case) -> httpx.Response:
    return client.post("/invocations", content=case.body, headers=headers(case))


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_model_dir(tmp_path_factory.mktemp("artifact") / "model")


class Container(NamedTuple):
    client: httpx.Client
    server: subprocess.Popen
    log: Path


@contextlib.contextmanager
def serving_container(model_dir: Path, root: Path) -> Iterator[Container]:
    """The toolkit's ``serve`` with ``model_dir`` as /opt/ml/model, once it answers /ping."""
    bin_dir = hiding_environment()
    shutil.copytree(model_dir, root / "model")
    port = free_port()
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SM_", "SAGEMAKER_"))},
        "PATH": f"{bin_dir}:{os.environ['PATH']}",  # the toolkit runs `torchserve` from PATH
        "SAGEMAKER_BASE_DIR": str(root),
        "SAGEMAKER_BIND_TO_PORT": str(port),
        "SAGEMAKER_MODEL_SERVER_WORKERS": "1",
        # As behind network isolation: nothing to install from, nothing installed.
        "PIP_NO_INDEX": "1",
        "PIP_INDEX_URL": "http://127.0.0.1:9/simple",
        "HIDE_PACKAGES": ",".join(HIDDEN),
    }
    log_path = root / "serve.log"
    log = log_path.open("wb")
    server = subprocess.Popen(
        [bin_dir / "python", "-c", SERVE, str(root / "ts.properties")],
        cwd=root,  # TorchServe keeps its model store and logs in the working directory
        env=environment,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            container = Container(client, server, log_path)
            wait_until(container, lambda: client.get("/ping").status_code == 200)
            yield container
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGKILL)
        server.wait()
        log.close()


def hiding_environment() -> Path:
    """The serving toolkit's environment, able to hide the preprocessing packages."""
    bin_dir = toolkit_environment("serving-toolkit", *TOOLKIT)
    site = next((bin_dir.parent / "lib").glob("python3*/site-packages"))
    (site / "hide_packages.py").write_text(HIDE_PACKAGES)
    (site / "hide_packages.pth").write_text("import hide_packages\n")
    return bin_dir


def test_the_container_cannot_see_the_packages_the_model_carries() -> None:
    """The hiding works: without the model's code/vendor/ none of them imports."""
    bin_dir = hiding_environment()
    for name in HIDDEN:
        hidden = subprocess.run(
            [bin_dir / "python", "-c", f"import {name}"],
            env={**os.environ, "HIDE_PACKAGES": ",".join(HIDDEN)},
            capture_output=True,
            text=True,
            check=False,
        )
        assert hidden.returncode == 1 and "(hidden)" in hidden.stderr, hidden.stderr


def wait_until(container: Container, ready: Callable[[], bool]) -> None:
    """Poll ``ready`` until it holds, failing with the server's log if it dies or never does."""
    deadline = time.monotonic() + START_SECONDS
    while True:
        assert container.server.poll() is None, container.log.read_text()[-3000:]
        assert time.monotonic() < deadline, container.log.read_text()[-3000:]
        with contextlib.suppress(httpx.TransportError):
            if ready():
                return
        time.sleep(1)


def emulator_answers(model_dir: Path, root: Path, cases: list[Case]) -> list[Answer]:
    """The endpoint emulator's answers, in process, at the container's own route."""
    slot = ModelSlot(build_tarball(model_dir, root / "model.tar.gz"))

    async def send() -> list[Answer]:
        transport = httpx.ASGITransport(app=endpoint_emulator.create_app(slot))
        async with httpx.AsyncClient(transport=transport, base_url="http://endpoint") as client:
            answers = []
            for case in cases:
                response = await client.post(
                    "/invocations", content=case.body, headers=headers(case)
                )
                answers.append(answer(response))
            return answers

    try:
        return asyncio.run(send())
    finally:
        slot.close()


def test_the_serving_container_answers_every_request_as_the_emulator_does(
    model_dir: Path, tmp_path: Path
) -> None:
    cases = list(CASES.values())
    with serving_container(model_dir, tmp_path / "opt-ml") as container:
        # 404 until the model is registered, 503 until a worker has loaded it.
        loading = (404, 503)
        wait_until(container, lambda: post(container.client, cases[0]).status_code not in loading)
        served = [answer(post(container.client, case)) for case in cases]

    emulated = emulator_answers(model_dir, tmp_path, cases)

    differences = {
        name: {"container": got, "emulator": expected}
        for name, got, expected in zip(CASES, served, emulated, strict=True)
        if got != expected
    }
    assert differences == {}
    statuses = {answer.status for answer in served}
    assert {200, 400, 406, 413, 415, 500} <= statuses, statuses


def test_a_corrupt_model_file_keeps_the_container_healthy_where_the_emulator_refuses_it(
    model_dir: Path, tmp_path: Path
) -> None:
    """The one deliberate difference: the emulator refuses to start on a model that won't load.

    The container loads the model in a TorchServe worker after /ping already answers, so the
    endpoint goes InService and fails every request (a deploy must prove the model by
    invoking it, not by its health check). Locally, failing at once with the reason serves
    better than a healthy endpoint that answers nothing.
    """
    corrupt = shutil.copytree(model_dir, tmp_path / "corrupt")
    (corrupt / "model.pt").write_bytes(b"not a torch file")

    with serving_container(corrupt, tmp_path / "opt-ml") as container:
        wait_until(container, lambda: "Backend worker process died" in container.log.read_text())
        ping = container.client.get("/ping")
        # A request waits for TorchServe's next restart of the worker, which backs off for
        # seconds to minutes; it then fails with the worker ("Worker died.", 500). No answer
        # within the wait is the same failure seen earlier.
        try:
            failed = post(container.client, CASES["praise"]).status_code
        except httpx.TimeoutException:
            failed = None
    emulator = subprocess.run(
        [
            sys.executable,
            "-m",
            "sentiment.endpoint_emulator",
            "--port",
            "0",
            "--model",
            str(build_tarball(corrupt, tmp_path / "corrupt.tar.gz")),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert (ping.status_code, ping.json()) == (200, {"status": "Healthy"})
    assert failed in (None, 500, 503)
    assert emulator.returncode == 1
    assert "cannot serve" in emulator.stderr and "model.pt" in emulator.stderr
