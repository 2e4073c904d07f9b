"""A tiny aclImdb corpus, generated: the official archive's layout with made-up reviews.

The reviews read like IMDB's (paragraphs split by `<br /><br />`, the odd `<i>` tag,
entities, accents and emoji) and carry a signal a small model can learn: positive
reviews use words of praise, negative ones words of scorn, around neutral sentences
shared by both. Generation is seeded, so every test run sees the same files.
"""

from __future__ import annotations

import io
import random
import tarfile
from dataclasses import dataclass
from pathlib import Path

LABELED_FOLDERS = ("train/pos", "train/neg", "test/pos", "test/neg")
UNLABELED_FOLDER = "train/unsup"
FIXTURE_SEED = 2011
# Enough for a tiny model to learn from, small enough to prepare in a blink.
PER_CLASS = 40
UNLABELED = 12

_OPENINGS = (
    "I rented this one on a rainy Sunday afternoon.",
    "Saw it at a small festival back in 2006 &amp; never forgot it.",
    "My brother recommended this &quot;hidden gem&quot; to me.",
    "Caught this on late-night TV — no idea what to expect.",
    "I watched the director's cut with my family.",
    "Just finished watching it for the second time.",
)
_NEUTRAL = (
    "The plot follows a detective who returns to her home town.",
    "It was shot in São Paulo and Zürich over three summers.",
    "The cast includes a few faces you'll recognise from 1980s television.",
    "It runs about two hours, with an intermission in the middle.",
    "The score is by a composer from Reykjavík.",
    "Most of the story takes place in a café near the harbour.",
    "There is a subplot about AT&T, a lawsuit and a stolen script.",
    "The DVD has a commentary track and a short documentary.",
    "Based on a novel by Françoise Sagan.",
    "Filmed in black &amp; white, except for the final scene.",
)
_POSITIVE = (
    "The acting is wonderful and the script is brilliant.",
    "A superb, moving <i>masterpiece</i> — I loved every minute of it.",
    "Beautiful photography and a delightful, memorable score.",
    "Truly excellent: funny, warm and perfectly paced.",
    "The lead gives a stunning, heartfelt performance.",
    "One of the best films I have seen this decade. 10/10 😍",
    "Highly recommended; a gorgeous, inspiring film.",
    "I can't wait to watch it again, it's that good!",
    "A charming, clever and thoroughly enjoyable story.",
    "Great direction, great music, great fun. ❤️",
)
_NEGATIVE = (
    "The acting is awful and the script is terrible.",
    "A boring, pointless <i>mess</i> — I hated every minute of it.",
    "Ugly photography and an annoying, forgettable score.",
    "Truly dreadful: dull, lazy and badly paced.",
    "The lead gives a wooden, lifeless performance.",
    "One of the worst films I have seen this decade. 1/10 😡",
    "Avoid it; a stupid, depressing waste of time.",
    "I don't want to watch it ever again, it's that bad!",
    "A clumsy, tedious and thoroughly disappointing story.",
    "Poor direction, poor music, no fun at all. 👎",
)
_POSITIVE_RATINGS = (7, 8, 9, 10)
_NEGATIVE_RATINGS = (1, 2, 3, 4)


@dataclass(frozen=True)
class FixtureReview:
    folder: str  # e.g. "train/pos"
    review_id: int
    rating: int  # 0 for unlabeled reviews, as in the official archive
    text: str

    @property
    def file_name(self) -> str:
        return f"{self.review_id}_{self.rating}.txt"

    @property
    def relative_path(self) -> str:
        return f"{self.folder}/{self.file_name}"

    @property
    def label(self) -> int | None:
        """1 positive, 0 negative, None unlabeled."""
        return {"pos": 1, "neg": 0}.get(self.folder.rsplit("/", 1)[1])


def _review_text(rng: random.Random, opinions: tuple[str, ...]) -> str:
    body = rng.sample(_NEUTRAL, rng.randint(1, 3)) + rng.sample(opinions, rng.randint(2, 4))
    rng.shuffle(body)
    sentences = [rng.choice(_OPENINGS), *body]
    paragraphs = []
    while sentences:
        size = rng.randint(1, 3)
        paragraphs.append(" ".join(sentences[:size]))
        sentences = sentences[size:]
    return "<br /><br />".join(paragraphs)


def generate_reviews(
    per_class: int = PER_CLASS, unlabeled: int = UNLABELED, seed: int = FIXTURE_SEED
) -> list[FixtureReview]:
    """`per_class` reviews in each of the four labeled folders, and `unlabeled` in train/unsup."""
    rng = random.Random(seed)
    reviews = []
    for folder in LABELED_FOLDERS:
        positive = folder.endswith("pos")
        for review_id in range(per_class):
            rating = rng.choice(_POSITIVE_RATINGS if positive else _NEGATIVE_RATINGS)
            text = _review_text(rng, _POSITIVE if positive else _NEGATIVE)
            reviews.append(FixtureReview(folder, review_id, rating, text))
    for review_id in range(unlabeled):
        text = _review_text(rng, _POSITIVE if rng.random() < 0.5 else _NEGATIVE)
        reviews.append(FixtureReview(UNLABELED_FOLDER, review_id, 0, text))
    return reviews


def write_directory(reviews: list[FixtureReview], parent: Path) -> Path:
    """Write the reviews as `parent/aclImdb/<folder>/<id>_<rating>.txt`; returns that aclImdb."""
    root = parent / "aclImdb"
    for folder in LABELED_FOLDERS:
        (root / folder).mkdir(parents=True, exist_ok=True)
    # The official archive's extra files, which must be ignored.
    (root / "README").write_text("Large Movie Review Dataset v1.0 (fixture)\n", encoding="utf-8")
    (root / "train" / "urls_pos.txt").write_text("http://www.imdb.com/title/tt0000001/\n")
    for review in reviews:
        path = root / review.relative_path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(review.text, encoding="utf-8")
    return root


def write_archive(directory: Path, archive: Path, arcname: str = "aclImdb") -> Path:
    """Tar and gzip a directory under `arcname`, as the official archive holds `aclImdb/`."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(directory, arcname=arcname, filter=_without_owner)
    archive.write_bytes(buffer.getvalue())
    return archive


def _without_owner(member: tarfile.TarInfo) -> tarfile.TarInfo:
    member.uid = member.gid = 0
    member.uname = member.gname = ""
    return member
