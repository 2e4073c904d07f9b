"""model/progress.py: how far a long step has got, in a log and in a terminal."""

from __future__ import annotations

import io

from contract.layout import MODEL_SOURCE_DIR
from sentiment.model_loader import import_isolated

progress = import_isolated(MODEL_SOURCE_DIR, "progress")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_log_gets_a_plain_line_now_and_then_with_the_time_left() -> None:
    log, clock = io.StringIO(), Clock()
    bar = progress.Progress("epoch 1/3", 10, "batches", stream=log, every_seconds=30, clock=clock)
    for _ in range(4):
        clock.now += 10
        bar.advance()  # 10, 20, 30 (shown), 40 s
    for _ in range(6):
        clock.now += 10
        bar.advance()  # ... 60 (shown), ... 90 (shown), 100 s (the end, shown)
    bar.finish()
    assert log.getvalue().splitlines() == [
        "epoch 1/3: 3/10 batches (30%), 30 s, about 70 s left",
        "epoch 1/3: 6/10 batches (60%), 60 s, about 40 s left",
        "epoch 1/3: 9/10 batches (90%), 90 s, about 10 s left",
        "epoch 1/3: 10/10 batches (100%), 100 s",
    ]


def test_a_step_that_ends_early_says_where_it_stopped() -> None:
    log, clock = io.StringIO(), Clock()
    bar = progress.Progress("word2vec", 10, "epochs", stream=log, clock=clock)
    clock.now += 5
    bar.advance(2)
    bar.finish()
    assert log.getvalue() == "word2vec: 2/10 epochs (20%), 5 s, about 20 s left\n"


def test_a_terminal_line_is_rewritten_in_place() -> None:
    terminal, clock = Terminal(), Clock()
    bar = progress.Progress("word2vec", 2, "epochs", stream=terminal, clock=clock)
    clock.now += 4
    bar.advance()
    clock.now += 4
    bar.advance()
    bar.finish()
    assert terminal.getvalue() == (
        "\r\x1b[Kword2vec: 1/2 epochs (50%), 4 s, about 4 s left"
        "\r\x1b[Kword2vec: 2/2 epochs (100%), 8 s\n"
    )
