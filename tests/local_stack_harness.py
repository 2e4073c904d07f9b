"""Running `sentiment up` from a test: tiny trained models, free ports, the stack's log.

The stack runs as its own process tree, exactly as a user starts it; the test reads everything
it logs (all three tiers write to the same pipe) to wait for events such as a model swap.
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
from model_artifacts import TINY_HYPERPARAMETERS

from contract.layout import PROJECT_ROOT
from contract.packaging import build_tarball, extract_tarball, file_sha256
from sentiment import cli

STACK_START_SECONDS = 90


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def train_tiny_model(data: Path, model_dir: Path, seed: int, *hyperparameters: str) -> Path:
    """`sentiment train` with tiny hyperparameters: a real artifact in a few seconds."""
    status = cli.main(
        [
            "train",
            *("--data", str(data), "--model-dir", str(model_dir)),
            *("--checkpoint-dir", str(model_dir.parent / f"{model_dir.name}-checkpoints")),
            *TINY_HYPERPARAMETERS,
            *("--seed", str(seed)),
            *hyperparameters,
        ]
    )
    assert status == 0
    return model_dir / "model.tar.gz"


def modified_artifact(artifact: Path, destination: Path, edits: dict[str, str | None]) -> Path:
    """A copy of ``artifact`` with files (archive paths) appended to, replaced or removed.

    An edit starting with ``+`` is appended to the file; None removes it; otherwise it
    replaces it.
    """
    with tempfile.TemporaryDirectory() as scratch:
        root = extract_tarball(artifact, Path(scratch) / "model")
        for name, text in edits.items():
            path = root / name
            if text is None:
                path.unlink()
                continue
            if text.startswith("+"):
                text = path.read_text(encoding="utf-8") + text[1:]
            path.write_text(text, encoding="utf-8")
        return build_tarball(root, destination)


def install_atomically(source: Path, target: Path) -> None:
    """Put ``source`` at ``target`` the way `sentiment train` writes it: a rename."""
    partial = target.with_name(target.name + ".partial")
    shutil.copyfile(source, partial)
    partial.replace(target)


@dataclass
class RunningStack:
    process: subprocess.Popen
    page_url: str
    api_url: str
    endpoint_url: str
    capture_dir: Path
    feedback_dir: Path
    lines: list[str] = field(default_factory=list)
    _changed: threading.Condition = field(default_factory=threading.Condition)

    def _read(self) -> None:
        for line in self.process.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    @property
    def feedback_url(self) -> str:
        return self.api_url.removesuffix("/predict") + "/feedback"

    def mark(self) -> int:
        with self._changed:
            return len(self.lines)

    def wait_for(self, pattern: str, since: int = 0, timeout: float = 30.0) -> str:
        """The first log line from ``since`` on that matches ``pattern``."""
        expression = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for line in self.lines[since:]:
                    if expression.search(line):
                        return line
                since = len(self.lines)
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self.process.poll() is not None:
                    raise AssertionError(
                        f"no log line matching {pattern!r}; the log:\n" + "\n".join(self.lines)
                    )
                self._changed.wait(min(remaining, 0.5))

    def log_since(self, since: int) -> str:
        with self._changed:
            return "\n".join(self.lines[since:])

    def tier_pid(self, module: str) -> int:
        for child in psutil.Process(self.process.pid).children():
            if f"sentiment.{module}" in child.cmdline():
                return child.pid
        raise AssertionError(f"no {module} process under sentiment up")

    def serve(self, artifact: Path, timeout: float = 30.0) -> None:
        """Swap ``artifact`` in through the watched file and wait until it serves."""
        since = self.mark()
        install_atomically(artifact, self.model_path)
        self.wait_for(f"now serving sha256={file_sha256(artifact)[:12]}", since, timeout)

    def kill_endpoint(self) -> int:
        """SIGKILL the endpoint emulator, as an instance dies; the log's mark from just before."""
        since = self.mark()
        os.kill(self.tier_pid("endpoint_emulator"), signal.SIGKILL)
        return since

    def wait_for_endpoint_restart(self, since: int, timeout: float = 60.0) -> None:
        """Until `sentiment up` has restarted the endpoint killed after ``since`` and it is up."""
        self.wait_for("endpoint emulator exited .* restarting", since, timeout)
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(self.endpoint_url + "/ping", timeout=2, trust_env=False).is_success:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(
                    "the endpoint emulator did not come back:\n" + self.log_since(since)
                )
            time.sleep(0.1)

    @property
    def model_path(self) -> Path:
        arguments = self.process.args
        return Path(arguments[arguments.index("--model") + 1])

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signum)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            for child in psutil.Process(self.process.pid).children(recursive=True):
                child.kill()
            self.process.kill()
            raise


def start_stack(
    model: Path | None,
    environment: dict[str, str] | None = None,
    *,
    cwd: Path = PROJECT_ROOT,
    start_seconds: float = STACK_START_SECONDS,
    arguments: tuple[str, ...] = (),
    gate: bool = False,
) -> RunningStack:
    """`sentiment up [--model MODEL]` on free loopback ports, once it announces the page.

    Without a model, `sentiment up` prepares the data and trains the default model in
    `cwd` first. Without ``gate`` every new model is swapped in (the tiny models' figures
    are noise), and the promotion gate only logs.
    """
    ports = [free_port() for _ in range(3)]
    # Each stack records its traffic and feedback apart, never into the checkout's artifacts/.
    records = Path(tempfile.mkdtemp(prefix="sentiment-records-"))
    atexit.register(shutil.rmtree, records, ignore_errors=True)
    capture_dir, feedback_dir = records / "capture", records / "feedback"
    command = [
        *(sys.executable, "-m", "sentiment.cli", "up"),
        *(() if model is None else ("--model", str(model))),
        *("--port", str(ports[0]), "--api-port", str(ports[1])),
        *("--endpoint-port", str(ports[2])),
        *("--capture-dir", str(capture_dir)),
        *("--feedback-dir", str(feedback_dir)),
        *("--prediction-database", str(records / "predictions.sqlite")),
        *(() if gate else ("--force-promotion",)),
        *arguments,
    ]
    process = subprocess.Popen(
        command,
        cwd=cwd,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(environment or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        encoding="utf-8",
        errors="replace",
    )
    stack = RunningStack(
        process,
        page_url=f"http://127.0.0.1:{ports[0]}/",
        api_url=f"http://127.0.0.1:{ports[1]}/predict",
        endpoint_url=f"http://127.0.0.1:{ports[2]}",
        capture_dir=capture_dir,
        feedback_dir=feedback_dir,
    )
    threading.Thread(target=stack._read, daemon=True).start()
    try:
        stack.wait_for(r"^Press Ctrl\+C to stop", timeout=start_seconds)
    except AssertionError:
        stack.stop(signal.SIGKILL)
        raise
    return stack


def post_review(api_url: str, review: str, timeout: float = 30.0) -> httpx.Response:
    return httpx.post(api_url, json={"review": review}, timeout=timeout, trust_env=False)
