"""Word embeddings pretrained with word2vec on every review the training job may read.

The labeled training split and the 50,000 unlabeled reviews teach the embeddings which
words are used alike before the LSTM sees a single label: training then needs a few
epochs instead of ten, and overfits less.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np
from gensim.models import Word2Vec
from gensim.models.callbacks import CallbackAny2Vec
from preprocess import PAD_ID
from progress import Progress


def _stable_hash(text: str) -> int:
    # gensim seeds each word's vector from hash(word); Python's str hash changes
    # every run, which would make training irreproducible.
    return zlib.crc32(text.encode())


class _EpochProgress(CallbackAny2Vec):
    def __init__(self, progress: Progress) -> None:
        self.progress = progress

    def on_epoch_end(self, model: Word2Vec) -> None:
        self.progress.advance()


def word2vec_embeddings(
    reviews: Sequence[np.ndarray],
    vocabulary_size: int,
    dimensions: int,
    *,
    epochs: int,
    seed: int,
    workers: int,
) -> np.ndarray:
    """A (vocabulary_size, dimensions) float32 matrix: padding zero, unseen ids small noise."""
    sentences = [[str(word) for word in review.tolist()] for review in reviews if len(review)]
    progress = Progress("word2vec", epochs, "epochs")
    model = Word2Vec(
        sentences,
        vector_size=dimensions,
        window=5,
        min_count=1,
        sg=0,
        negative=5,
        epochs=epochs,
        seed=seed,
        workers=workers,
        hashfxn=_stable_hash,
        callbacks=[_EpochProgress(progress)],
    )
    progress.finish()
    rng = np.random.default_rng(seed)
    matrix = rng.normal(0.0, 0.1, (vocabulary_size, dimensions)).astype(np.float32)
    for word, index in model.wv.key_to_index.items():
        matrix[int(word)] = model.wv.vectors[index]
    matrix[PAD_ID] = 0.0
    return matrix
