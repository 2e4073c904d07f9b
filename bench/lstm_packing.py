"""Why model/network.py does not pack: time a BiLSTM's forward and backward pass over a
length-bucketed batch, packed (nn.utils.rnn) and padded with per-row reversal
(network.BidirectionalLSTM), which compute the same outputs.

    .venv/bin/python bench/lstm_packing.py [--threads 2] [--repeats 3]

Prints one JSON object with seconds per batch for each way.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "model"))
from network import BidirectionalLSTM, NetworkConfig


def _time(step, repeats: int) -> float:
    step()  # warm-up
    started = time.perf_counter()
    for _ in range(repeats):
        step()
    return (time.perf_counter() - started) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    config = NetworkConfig(vocabulary_size=2, embedding_dim=128, hidden_dim=128)
    padded_lstm = BidirectionalLSTM(config)
    packed_lstm = nn.LSTM(128, 128, batch_first=True, bidirectional=True)
    inputs = torch.randn(args.batch, args.steps, 128, requires_grad=True)
    # A length-bucketed batch: lengths within 25% of the longest.
    lengths = torch.randint(int(args.steps * 0.75), args.steps + 1, (args.batch,))
    lengths[0] = args.steps

    def packed() -> None:
        packed_inputs = pack_padded_sequence(
            inputs, lengths, batch_first=True, enforce_sorted=False
        )
        outputs, _ = pad_packed_sequence(packed_lstm(packed_inputs)[0], batch_first=True)
        outputs.sum().backward()

    def padded() -> None:
        padded_lstm(inputs, lengths).sum().backward()

    results = {
        "batch": args.batch,
        "longest": args.steps,
        "threads": args.threads,
        "torch": torch.__version__,
        "packed_seconds_per_batch": round(_time(packed, args.repeats), 3),
        "padded_seconds_per_batch": round(_time(padded, args.repeats), 3),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
    }
    results["packed_over_padded"] = round(
        results["packed_seconds_per_batch"] / results["padded_seconds_per_batch"], 1
    )
    print(json.dumps(results))


if __name__ == "__main__":
    main()
