"""The host pipeline of the word2vec trainers: the corpus as int32 arrays, and its items, chunk by chunk, vectorized.

The corpus is encoded once (:class:`Encoded`: every in-vocabulary word as an
id, and where each sentence starts); an epoch is then NumPy over whole
chunks of sentences, never a Python loop over words:

* subsampling: word ``w`` is kept with :func:`~seqbench.embed.corpus.keep_probability`,
  one uniform draw per word of the epoch;
* dynamic windows: each kept position ``t`` draws a reach ``b_t ∈ {1..window}``;
  its context is the kept positions ``t + j``, ``1 ≤ |j| ≤ b_t``, of the same
  sentence (windows never cross sentences; a dropped word does not count);
* negatives (:class:`NoiseTable`): ``w ~ P_n`` in O(1) each by Walker's alias
  method, one uniform per draw.

Chunks end on sentence boundaries, so no window is cut. The items are
word2vec's: skip-gram's (context word, centre word) pairs, where the context
word's input vector predicts the centre word, and CBOW's (context window,
centre word).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seqbench.embed import corpus as text
from seqbench.reference import noise_distribution

#: corpus words per chunk: large enough that NumPy's per-call cost vanishes, small enough to stay in cache
CHUNK_WORDS = 10_000


@dataclass(frozen=True)
class Encoded:
    """A corpus as word ids: ``ids[starts[s]:starts[s+1]]`` is sentence ``s`` (out-of-vocabulary words dropped)."""

    ids: np.ndarray  # (N,) int32
    starts: np.ndarray  # (S + 1,) int64, starts[0] = 0, starts[-1] = N

    @classmethod
    def encode(cls, path: Path, vocab: text.Vocabulary, fraction: float = 1.0) -> Encoded:
        """One pass over the corpus (its first ``fraction``), one dictionary lookup per word."""
        index, parts, lengths = vocab.index, [], []
        for sentence in text.sentences_of(path, fraction):
            ids = [index[w] for w in sentence if w in index]
            parts.append(ids)
            lengths.append(len(ids))
        ids = np.fromiter((i for part in parts for i in part), dtype=np.int32, count=sum(lengths))
        return cls(ids, np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)]))

    @property
    def words(self) -> int:
        return len(self.ids)

    def chunks(self, words: int = CHUNK_WORDS) -> Iterator[slice]:
        """Slices of whole sentences holding about ``words`` words each (a longer sentence is a chunk alone)."""
        bounds = np.searchsorted(self.starts, np.arange(words, self.words, words), side="right") - 1
        cuts = np.unique(np.concatenate([[0], self.starts[bounds], [self.words]]))
        for first, last in zip(cuts[:-1], cuts[1:]):
            yield slice(int(first), int(last))

    def sentence_of(self, part: slice) -> np.ndarray:
        """The sentence number of every position of ``part``: (n,) int64."""
        return np.searchsorted(self.starts, np.arange(part.start, part.stop), side="right") - 1


def offsets(window: int) -> np.ndarray:
    """The context offsets ``j = -window … -1, 1 … window``: (2·window,)."""
    return np.concatenate([np.arange(-window, 0), np.arange(1, window + 1)])


def windows(sentence: np.ndarray, window: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """word2vec's dynamic windows over positions of a chunk whose sentence numbers are ``sentence``: the context
    positions ``u = t + j`` (clipped into the chunk) and the mask of those in the window drawn and the sentence:
    (n, 2·window) each."""
    n = len(sentence)
    j = offsets(window)
    reach = rng.integers(1, window + 1, n)
    u = np.arange(n)[:, None] + j
    inside = (u >= 0) & (u < n)
    u = np.clip(u, 0, max(n - 1, 0))
    return u, inside & (np.abs(j) <= reach[:, None]) & (sentence[u] == sentence[:, None])


def skipgram_items(ids: np.ndarray, sentence: np.ndarray, window: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """``(w_ctx (P, 1), w_o (P,))``: every (context word, centre word) pair, centre by centre."""
    u, mask = windows(sentence, window, rng)
    t, k = np.nonzero(mask)
    return ids[u[t, k]][:, None], ids[t]


def cbow_items(ids: np.ndarray, sentence: np.ndarray, window: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """``(w_ctx (P, 2·window), w_o (P,))``: each centre's context window, ``-1`` padding it; centres without one
    are left out."""
    u, mask = windows(sentence, window, rng)
    w_ctx = np.where(mask, ids[u] if len(ids) else u, -1)
    has = mask.any(axis=1)
    return w_ctx[has], ids[has]


ITEMS = {"skipgram": skipgram_items, "cbow": cbow_items}


def epoch_items(encoded: Encoded, keep: np.ndarray, items: str, window: int, noise: NoiseTable, negative: int,
                rng: np.random.Generator, words: int = CHUNK_WORDS) -> Iterator[tuple]:
    """One epoch's items, chunk by chunk: ``(w_ctx, w_o, w_neg, corpus_words)``, ids int32, ``negative`` noise
    words per item from ``noise``, ``corpus_words`` the words of the chunk before subsampling. ``items``:
    ``"skipgram"`` (pairs) or ``"cbow"`` (windows); ``keep``: (V,) keep probabilities."""
    make = ITEMS[items]
    for part in encoded.chunks(words):
        ids = encoded.ids[part]
        kept = rng.random(len(ids)) < keep[ids]
        w_ctx, w_o = make(ids[kept], encoded.sentence_of(part)[kept], window, rng)
        yield w_ctx, w_o, noise.draw((len(w_o), negative), rng), len(ids)


class NoiseTable:
    """``w ~ P_n = U^{3/4}/Z`` in O(1) per draw: Walker's alias method (Vose's construction).

    Column ``i`` of ``V`` equal columns keeps word ``i`` with probability
    ``prob[i]`` and gives the rest to ``alias[i]``; a draw picks a column and
    a side with one uniform ``x = u·V``: column ``⌊x⌋``, word ``⌊x⌋`` if the
    fraction ``x − ⌊x⌋ < prob[⌊x⌋]``, else its alias. The table states the same
    distribution as :func:`~seqbench.reference.sample_negatives`' inverse CDF.
    """

    def __init__(self, dist: np.ndarray):
        dist = np.asarray(dist, dtype=np.float64)
        V = len(dist)
        scaled = dist * (V / dist.sum())
        prob = np.ones(V)
        alias = np.arange(V, dtype=np.int32)
        small = [i for i in range(V) if scaled[i] < 1]
        large = [i for i in range(V) if scaled[i] >= 1]
        while small and large:
            s, g = small.pop(), large.pop()
            prob[s], alias[s] = scaled[s], g
            scaled[g] -= 1 - scaled[s]
            (small if scaled[g] < 1 else large).append(g)
        self.prob, self.alias = prob, alias  # columns left in either list are full (prob 1, rounding)

    @classmethod
    def of_counts(cls, counts: np.ndarray, power: float = 0.75) -> NoiseTable:
        return cls(noise_distribution(counts, power))

    def __len__(self) -> int:
        return len(self.prob)

    def draw(self, shape, rng: np.random.Generator) -> np.ndarray:
        """Word ids ``w ~ P_n``, i.i.d., of ``shape``, int32."""
        x = rng.random(shape) * len(self.prob)
        column = np.minimum(x.astype(np.int32), len(self.prob) - 1)  # u·V rounds up to V for u next to 1
        return np.where(x - column < self.prob[column], column, self.alias[column])
