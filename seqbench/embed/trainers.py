"""The embedding trainers: one loop per model, shared by every backend, which supplies only its update step.

* skip-gram and CBOW with negative sampling, as word2vec trains them:
  separate input and output matrices (``E_in`` uniform in ``±0.5/d``,
  ``E_out`` zero), frequent words subsampled (:func:`~seqbench.embed.corpus.keep_probability`),
  a dynamic window (:mod:`seqbench.embed.corpus`), ``K`` noise words per item from
  ``P_n = U^{3/4}/Z``, and a learning rate decaying linearly from ``lr`` to
  ``lr·1e-4`` over the words of all epochs. The items of ``batch`` windows
  are one step (:func:`seqbench.reference.training.negative_sampling_step`);
  the vectors are the rows of ``E_in``.
* GloVe: the co-occurrence counts ``X_ij`` (1/distance weighting) of the
  whole corpus, then epochs of AdaGrad over its nonzero entries in a fresh
  random order, ``batch`` entries a step
  (:func:`seqbench.reference.training.glove_adagrad_step`); the vectors are
  ``(e + θ)/2``.

Throughput is counted in corpus words (in the vocabulary, before
subsampling) per second of training, the same way for every backend and
for gensim; building the vocabulary (and GloVe's counting) is not timed,
nor is one warm-up step on scratch parameters, where a compiling backend
(jax) compiles its step for the batch shape.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from seqbench.embed import corpus as text
from seqbench.reference import glove_embedding, noise_distribution, sample_negatives
from seqbench.reference.training import GLOVE_PARAMETERS

MODELS = ("skipgram", "cbow", "glove")
#: learning rates: word2vec's 0.025 for both word2vec models (as gensim), GloVe's 0.05
LEARNING_RATE = {"skipgram": 0.025, "cbow": 0.025, "glove": 0.05}
#: items (windows, or GloVe entries) per step; the step's work grows with it, its Python overhead does not
BATCH = {"skipgram": 1024, "cbow": 512, "glove": 8192}


@dataclass
class Settings:
    model: str = "skipgram"
    dim: int = 100
    window: int = 5
    negative: int = 5
    min_count: int = 5
    epochs: int = 5
    sample: float = 1e-3
    lr: float | None = None  # None: LEARNING_RATE[model]
    batch: int | None = None  # None: BATCH[model]
    x_max: float = 100.0
    alpha: float = 0.75
    seed: int = 1
    fraction: float = 1.0  # the first part of the corpus only

    def __post_init__(self):
        if self.model not in MODELS:
            raise ValueError(f"--model must be one of {list(MODELS)}, got {self.model!r}")
        for name in ("dim", "window", "negative", "min_count", "epochs"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be a whole number ≥ 1, got {value!r}")
        if not 0 < self.fraction <= 1:
            raise ValueError(f"fraction must be in (0, 1], got {self.fraction}")
        self.lr = self.lr or LEARNING_RATE[self.model]
        self.batch = self.batch or BATCH[self.model]


@dataclass
class Trained:
    """What a training run gives: the vocabulary, the word vectors (NumPy), and how fast it went."""

    vocab: text.Vocabulary
    vectors: np.ndarray
    seconds: float
    words: int  # corpus words trained on, over all epochs
    extra: dict = field(default_factory=dict)

    @property
    def words_per_second(self) -> float:
        return self.words / self.seconds if self.seconds > 0 else float("nan")


Progress = Callable[[int], None]  # called with the words just trained


def _batches(path: Path, vocab: text.Vocabulary, s: Settings, rng: np.random.Generator) -> Iterator[tuple]:
    """``(w_ctx, w_o, words)`` batches of ``s.batch`` items over all epochs (the remainder carried on, so every
    batch but the last has the same shape), ``words`` the corpus words whose items the batch completes."""
    keep = text.keep_probability(vocab.counts, s.sample)
    items = text.ITEMS[s.model]
    held_ctx, held_o, held_words = [], [], 0
    for _ in range(s.epochs):
        for sentence in text.sentences_of(path, s.fraction):
            ids = vocab.ids(sentence)
            held_words += len(ids)
            ids = ids[rng.random(len(ids)) < keep[ids]]
            w_ctx, w_o = items(ids, s.window, rng)
            held_ctx.append(w_ctx)
            held_o.append(w_o)
            if sum(len(o) for o in held_o) >= s.batch:
                w_ctx, w_o = np.concatenate(held_ctx), np.concatenate(held_o)
                full = len(w_o) // s.batch * s.batch
                for start in range(0, full, s.batch):
                    yield w_ctx[start:start + s.batch], w_o[start:start + s.batch], held_words if start == 0 else 0
                held_ctx, held_o, held_words = [w_ctx[full:]], [w_o[full:]], 0
    w_ctx, w_o = np.concatenate(held_ctx), np.concatenate(held_o)
    if len(w_o) or held_words:
        yield w_ctx, w_o, held_words


def train_word2vec(backend, device: str, dtype: str, path: Path, s: Settings, vocab: text.Vocabulary | None = None,
                   progress: Progress | None = None) -> Trained:
    """Skip-gram or CBOW with negative sampling on ``backend``'s update step (see the module docstring)."""
    vocab = vocab or text.Vocabulary.build(path, s.min_count, s.fraction)
    step = backend.training_steps(device, dtype).negative_sampling
    rng = np.random.default_rng(s.seed)
    V, planned = len(vocab), s.epochs * vocab.total
    state = {"E_in": backend.to_device((rng.random((V, s.dim)) - 0.5) / s.dim, device, dtype),
             "E_out": backend.to_device(np.zeros((V, s.dim)), device, dtype)}
    noise = noise_distribution(vocab.counts)
    M = 1 if s.model == "skipgram" else 2 * s.window
    _warm_up(step, backend, device, dtype, {k: (V, s.dim) for k in state},
             (np.zeros((s.batch, M), np.int64), np.zeros(s.batch, np.int64), np.zeros((s.batch, s.negative), np.int64)))
    done = 0
    backend.synchronize(device)
    start = time.perf_counter()
    for w_ctx, w_o, words in _batches(path, vocab, s, rng):
        lr = s.lr * max(1 - done / planned, 1e-4)
        if len(w_o):
            state = step(state, w_ctx, w_o, sample_negatives(noise, (len(w_o), s.negative), rng), lr)
        done += words
        if progress and words:
            progress(words)
    backend.synchronize(device)
    seconds = time.perf_counter() - start
    return Trained(vocab, backend.to_numpy(state["E_in"]).astype(np.float64), seconds, done)


def train_glove(backend, device: str, dtype: str, path: Path, s: Settings, vocab: text.Vocabulary | None = None,
                progress: Progress | None = None) -> Trained:
    """GloVe by AdaGrad over the nonzero co-occurrence counts (see the module docstring)."""
    vocab = vocab or text.Vocabulary.build(path, s.min_count, s.fraction)
    X = text.cooccurrence_counts(path, vocab, s.window, s.fraction)
    step = backend.training_steps(device, dtype).glove
    rng = np.random.default_rng(s.seed)
    V = len(vocab)
    init = {"theta": (V, s.dim), "e": (V, s.dim), "b": (V,), "b_prime": (V,)}
    state = {k: backend.to_device((rng.random(shape) - 0.5) / s.dim, device, dtype) for k, shape in init.items()}
    state.update({f"G_{k}": backend.to_device(np.ones(shape), device, dtype) for k, shape in init.items()})
    entries = len(X.data)
    n = min(s.batch, entries)
    _warm_up(step, backend, device, dtype, {k: np.shape(v) for k, v in state.items()},
             (np.zeros(n, np.int64), np.zeros(n, np.int64), np.ones(n)))
    words_per_entry = vocab.total / max(entries, 1)  # progress and throughput in corpus words, as word2vec's
    backend.synchronize(device)
    start = time.perf_counter()
    for _ in range(s.epochs):
        order = rng.permutation(entries)
        for first in range(0, entries, s.batch):
            batch = order[first:first + s.batch]
            state = step(state, X.row[batch], X.col[batch], X.data[batch], s.lr)
            if progress:
                progress(round(len(batch) * words_per_entry))
    backend.synchronize(device)
    seconds = time.perf_counter() - start
    params = {k: backend.to_numpy(state[k]).astype(np.float64) for k in GLOVE_PARAMETERS}
    return Trained(vocab, glove_embedding(params["e"], params["theta"]), seconds, s.epochs * vocab.total,
                   {"entries": entries})


def _warm_up(step, backend, device, dtype, shapes: dict, batch: tuple) -> None:
    """One step on scratch parameters (ones) with a batch of the training's shape, untimed."""
    scratch = {k: backend.to_device(np.ones(shape), device, dtype) for k, shape in shapes.items()}
    step(scratch, *batch, 1e-3)
    backend.synchronize(device)


def train(backend, device: str, dtype: str, path: Path, s: Settings, vocab=None, progress=None) -> Trained:
    trainer = train_glove if s.model == "glove" else train_word2vec
    return trainer(backend, device, dtype, path, s, vocab, progress)


def train_gensim(path: Path, s: Settings, workers: int, vocab: text.Vocabulary | None = None) -> Trained:
    """The peer: gensim's ``Word2Vec`` on the same corpus (``LineSentence``), settings and thread count.

    Only training is timed (``build_vocab`` is not), as for the trainers here.
    """
    if s.model == "glove":
        raise ValueError("gensim has no GloVe trainer; its peer rows are skip-gram and CBOW")
    from gensim.models import Word2Vec
    from gensim.models.word2vec import LineSentence

    vocab = vocab or text.Vocabulary.build(path, s.min_count, s.fraction)
    sentences = list(text.sentences_of(path, s.fraction)) if s.fraction < 1 else LineSentence(str(path))
    model = Word2Vec(vector_size=s.dim, window=s.window, negative=s.negative, min_count=s.min_count,
                     sg=int(s.model == "skipgram"), sample=s.sample, alpha=s.lr, workers=workers, seed=s.seed,
                     hs=0, epochs=s.epochs)
    model.build_vocab(sentences)
    start = time.perf_counter()
    model.train(sentences, total_examples=model.corpus_count, epochs=s.epochs)
    seconds = time.perf_counter() - start
    kv = model.wv
    order = [w for w in vocab.words if w in kv.key_to_index]
    missing = set(vocab.words) - set(order)
    if missing:
        raise ValueError(f"gensim's vocabulary differs from seqbench's by {len(missing)} words")
    return Trained(vocab, np.asarray(kv[order], dtype=np.float64), seconds, s.epochs * vocab.total)
