"""Text corpora for the embedding trainers: the vocabulary, streamed sentences, word2vec's subsampling and
GloVe's co-occurrence counts (word2vec's items are :mod:`seqbench.embed.pipeline`'s).

A corpus is a plain-text file, one sentence per line, words separated by
white space (gensim's ``LineSentence``): it is read line by line, never
whole, and a line longer than :data:`MAX_SENTENCE` words is cut into
sentences of that length, as gensim does. ``gensim_data(name)`` is a file
shipped inside the gensim package (``head500.noblanks.cor``,
``lee_background.cor``, ``wordsim353.tsv``, ``questions-words.txt``), so
nothing is downloaded.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse

from seqbench.reference.glove import cooccurrence

MAX_SENTENCE = 10000


def gensim_data(name: str) -> Path:
    """The path of a data file that ships with gensim (``gensim/test/test_data``)."""
    try:
        from gensim.test.utils import datapath
    except ImportError:
        raise ValueError(f"{name!r} ships with gensim, which is not installed: pip install 'seqbench[embed]'") from None
    path = Path(datapath(name))
    if not path.exists():
        raise ValueError(f"gensim has no data file {name!r} (looked in {path.parent})")
    return path


def corpus_path(value: str) -> Path:
    """``--corpus``: a file path, or the name of a corpus that ships with gensim (``head500.noblanks.cor``)."""
    path = Path(value)
    if path.is_file():
        return path
    if path.exists():
        raise ValueError(f"--corpus must be a text file, got the folder {value!r}")
    if path.parent == Path(".") and path.suffix:
        try:
            return gensim_data(value)
        except ValueError:
            pass
    raise ValueError(f"--corpus must be a text file or a corpus shipped with gensim (e.g. head500.noblanks.cor, "
                     f"lee_background.cor); no file {value!r}")


def _lines(path: Path) -> Iterator[list[str]]:
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            words = line.split()
            for start in range(0, len(words), MAX_SENTENCE):
                yield words[start:start + MAX_SENTENCE]


@dataclass(frozen=True)
class Vocabulary:
    """The words kept (count ≥ ``min_count``), most frequent first, and their corpus counts."""

    words: tuple
    counts: np.ndarray  # (V,) int64
    index: dict
    corpus_words: int  # every word of the corpus, kept or not

    @classmethod
    def build(cls, path: Path, min_count: int = 5, fraction: float = 1.0) -> Vocabulary:
        """One pass over the corpus (the first ``fraction`` of its sentences)."""
        counts: Counter = Counter()
        for sentence in sentences_of(path, fraction):
            counts.update(sentence)
        kept = sorted((w for w, n in counts.items() if n >= min_count), key=lambda w: (-counts[w], w))
        if not kept:
            raise ValueError(f"--min-count {min_count} keeps no word of {path} ({len(counts)} distinct words)")
        return cls(tuple(kept), np.array([counts[w] for w in kept], dtype=np.int64),
                   {w: i for i, w in enumerate(kept)}, sum(counts.values()))

    def __len__(self) -> int:
        return len(self.words)

    @property
    def total(self) -> int:
        """Words of the corpus in the vocabulary (what an epoch trains on before subsampling)."""
        return int(self.counts.sum())

    def ids(self, sentence: list[str]) -> np.ndarray:
        """The sentence as word ids, words out of the vocabulary dropped (as word2vec does)."""
        index = self.index
        return np.fromiter((index[w] for w in sentence if w in index), dtype=np.int64)


def sentences_of(path: Path, fraction: float = 1.0) -> Iterator[list[str]]:
    """The corpus's sentences; with ``fraction < 1`` only the first part of its lines (a smaller corpus)."""
    if fraction >= 1:
        yield from _lines(path)
        return
    with open(path, encoding="utf-8", errors="replace") as f:
        lines = sum(1 for _ in f)
    keep = max(1, round(fraction * lines))
    for k, sentence in enumerate(_lines(path)):
        if k >= keep:
            return
        yield sentence


def keep_probability(counts: np.ndarray, sample: float) -> np.ndarray:
    """word2vec's subsampling: a word of frequency ``f = n/N`` is kept with ``(√(f/s) + 1)·s/f`` (capped at 1).

    Frequent words (``f ≫ s``) are dropped most of the time, so training
    spends less on "the" and more on informative words; ``sample = 0`` keeps all.
    """
    if sample <= 0:
        return np.ones(len(counts))
    f = counts / counts.sum()
    return np.minimum(1.0, (np.sqrt(f / sample) + 1) * sample / f)


def cooccurrence_counts(path: Path, vocab: Vocabulary, window: int, fraction: float = 1.0,
                        chunk: int = 200) -> scipy.sparse.coo_array:
    """GloVe's ``X_ij`` over the whole corpus (:func:`seqbench.reference.glove.cooccurrence` per sentence, summed
    every ``chunk`` sentences so memory stays bounded); windows do not cross sentences."""
    V = len(vocab)
    total = scipy.sparse.csr_array((V, V))
    part = []
    for sentence in sentences_of(path, fraction):
        ids = vocab.ids(sentence)
        if len(ids) > 1:
            part.append(cooccurrence(ids, V, window))
        if len(part) >= chunk:
            total = total + sum(p.tocsr() for p in part)
            part = []
    if part:
        total = total + sum(p.tocsr() for p in part)
    X = scipy.sparse.coo_array(total)
    X.sum_duplicates()
    return X
