"""The drift baseline the training job leaves in the model artifact (drift_baseline.json).

It profiles the validation reviews as the model reads and answers them (contract/drift.py):
length in tokens, the share of unknown words (none in a split prepared with this vocabulary
but the words beyond it), the calibrated score, the share of low-confidence verdicts as the
endpoint flags them (inference.verdict) and the most frequent words. Validation, not training:
the model's scores on the reviews it was fitted on are overconfident. `sentiment monitor` and
the drift Lambda compare captured traffic with it. Not served: inference.py never imports it.
No time stamp: the same training gives the same file.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from dataset import EncodedSplit
from inference import Scored, encode_batch, model_version, verdict
from network import SentimentNetwork
from preprocess import MIN_STEPS, OOV_ID, PAD_ID, Vocabulary

from contract.drift import BASELINE_FILE, Profile, baseline_document

SOURCE = "validation reviews"
_BATCH = 256


def split_scores(network: SentimentNetwork, split: EncodedSplit) -> list[float]:
    """P(positive) of every review of the split, in its order, as the endpoint computes it."""
    device = next(network.parameters()).device
    order = sorted(range(len(split)), key=lambda index: int(split.lengths[index]))
    scores = [0.0] * len(split)
    network.eval()
    with torch.inference_mode():
        for start in range(0, len(order), _BATCH):
            batch = order[start : start + _BATCH]
            encoded = [split.review(index).tolist() for index in batch]
            encoded = [ids + [PAD_ID] * (MIN_STEPS - len(ids)) for ids in encoded]
            ids, lengths = encode_batch(encoded)
            logits = network(ids.to(device), lengths.to(device))
            for index, score in zip(batch, torch.sigmoid(logits).tolist(), strict=True):
                scores[index] = score
    return scores


def validation_baseline(
    network: SentimentNetwork, vocabulary: Vocabulary, split: EncodedSplit, version: str
) -> dict:
    """The baseline document for the model's answers on ``split``."""
    words = ["", "", *vocabulary.words]  # by id; "" for padding and an unknown word
    profile = Profile()
    scores = split_scores(network, split)
    for index, score in enumerate(scores):
        ids = [int(word) for word in split.review(index) if word != PAD_ID]
        unknown = ids.count(OOV_ID)
        known = [words[word] for word in ids if word != OOV_ID]
        flagged = verdict(Scored(score, len(ids), len(known)))["low_confidence"]
        profile.add(known, [""] * unknown, score, flagged)
    verdicts = zip(scores, split.labels, strict=True)
    right = sum((score >= 0.5) == bool(label) for score, label in verdicts)
    return baseline_document(
        profile,
        source=SOURCE,
        model_version=version,
        accuracy=right / len(scores) if len(scores) else None,
    )


def write_baseline(
    model_dir: Path, network: SentimentNetwork, vocabulary: Vocabulary, split: EncodedSplit
) -> Path:
    """drift_baseline.json in a model directory whose weights, settings and vocabulary are
    already written (the baseline names the model version they make)."""
    document = validation_baseline(network, vocabulary, split, model_version(model_dir))
    path = model_dir / BASELINE_FILE
    path.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    return path
