"""The embedding trainers: one loop per model, shared by every backend, which supplies only its update step.

* skip-gram and CBOW with negative sampling, as word2vec trains them:
  separate input and output matrices (``E_in`` uniform in ``[−1/d, 1/d)`` as
  gensim 4 draws it, ``E_out`` zero; word2vec.c's ``±0.5/d`` trains less in 5
  epochs of a small corpus: skip-gram ρ 0.345 against 0.365 on head500),
  the corpus encoded once and its items made chunk by chunk (:mod:`seqbench.embed.pipeline`: frequent words subsampled, dynamic
  windows, ``K`` noise words per item from ``P_n = U^{3/4}/Z``), and a
  learning rate decaying linearly from ``lr`` to ``lr·1e-4`` over the words
  of all epochs. A minibatch backend's step takes ``batch`` items at a time
  (:func:`seqbench.reference.training.negative_sampling_step`); a sequential
  backend's (:class:`~seqbench.backends.protocol.TrainingSteps`) takes a chunk
  of about 10,000 corpus words at a time, item after item, in ``threads``
  threads on one set of matrices (hogwild, as word2vec and gensim), the rate
  set per chunk from the words trained before it. A backend with a corpus
  trainer (``TrainingSteps.corpus``: cupy on a GPU) draws and trains skip-gram's
  windows itself from the encoded corpus, one launch per large chunk. The vectors are the rows of ``E_in``.
* GloVe: parameters uniform in ``±0.5/d``, as GloVe's own code draws them;
  the co-occurrence counts ``X_ij`` (1/distance weighting) of the whole corpus, then epochs of AdaGrad over its nonzero entries in a fresh
  random order, ``batch`` entries a step
  (:func:`seqbench.reference.training.glove_adagrad_step`), or a chunk of
  entries per thread for a sequential backend; the vectors are ``(e + θ)/2``.

Throughput is counted in corpus words (in the vocabulary, before
subsampling) per second of training, the same way for every backend and
for gensim. Encoding the corpus is timed (once; gensim reads its text in
every epoch); building the vocabulary (and GloVe's counting) is not, nor is
one warm-up step on scratch parameters, where a compiling backend (jax,
numba) compiles its step.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from seqbench.embed import corpus as text, pipeline
from seqbench.reference import glove_embedding
from seqbench.reference.training import GLOVE_PARAMETERS

MODELS = ("skipgram", "cbow", "glove")
#: learning rates: word2vec's 0.025 for both word2vec models (as gensim), GloVe's 0.05
LEARNING_RATE = {"skipgram": 0.025, "cbow": 0.025, "glove": 0.05}
#: items per minibatch step (skip-gram pairs, windows, GloVe entries); the step's work grows with it, its Python
#: overhead does not, and a frequent word's summed update grows with it too: 256 windows (about 1,500 pairs) keep
#: skip-gram's ρ at gensim's on head500 where 512 lose 0.04 (README, "Training word vectors")
BATCH = {"skipgram": 1024, "skipgram_windows": 256, "cbow": 512, "glove": 8192}
#: GloVe entries per chunk a sequential trainer's thread takes
GLOVE_CHUNK = 65536


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
    batch: int | None = None  # None: BATCH of the step trained (step_model)
    x_max: float = 100.0
    alpha: float = 0.75
    seed: int = 1
    fraction: float = 1.0  # the first part of the corpus only
    threads: int = 0  # threads of a sequential trainer (and gensim's workers); 0: this machine's CPUs
    share_negatives: bool | None = None  # skip-gram: a window's noise words shared (None: on a minibatch backend)

    def __post_init__(self):
        if self.model not in MODELS:
            raise ValueError(f"--model must be one of {list(MODELS)}, got {self.model!r}")
        for name in ("dim", "window", "negative", "min_count", "epochs", "threads"):
            value = getattr(self, name)
            least = 0 if name == "threads" else 1
            if not isinstance(value, int) or value < least:
                raise ValueError(f"--{name.replace('_', '-')} must be a whole number ≥ {least}, got {value!r}")
        if not 0 < self.fraction <= 1:
            raise ValueError(f"fraction must be in (0, 1], got {self.fraction}")
        for name in ("lr", "batch"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"--{name} must be a positive number, got {value!r}")
        self.lr = self.lr or LEARNING_RATE[self.model]
        self.threads = self.threads or os.cpu_count() or 1


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


def _fixed_batches(chunks: Iterator[tuple], size: int) -> Iterator[tuple]:
    """The pipeline's ``(w_ctx, w_o, w_neg, words)`` chunks re-cut into batches of ``size`` items, int64 (the
    remainder carried on, so every batch but the last has one shape); ``words``: the corpus words a batch
    completes."""
    held, held_words = [], 0
    for *arrays, words in chunks:
        held.append(arrays)
        held_words += words
        if sum(len(a[1]) for a in held) >= size:
            arrays = [np.concatenate(column).astype(np.int64) for column in zip(*held)]
            full = len(arrays[1]) // size * size
            for first in range(0, full, size):
                yield (*(a[first:first + size] for a in arrays), held_words if first == 0 else 0)
            held, held_words = [[a[full:] for a in arrays]], 0
    arrays = [np.concatenate(column).astype(np.int64) for column in zip(*held)]
    if len(arrays[1]) or held_words:
        yield (*arrays, held_words)


def step_model(steps, s: Settings) -> str:
    """What ``steps`` (:class:`~seqbench.backends.protocol.TrainingSteps`) train for ``s``: the model, or
    ``"skipgram_windows"`` where skip-gram shares a window's noise words (``s.share_negatives``; by default on a
    minibatch backend, whose step then scores a window as one small matrix product, and not on a sequential one,
    which trains pair by pair as word2vec)."""
    shared = s.share_negatives if s.share_negatives is not None else not steps.sequential
    return "skipgram_windows" if s.model == "skipgram" and shared else s.model


def epochs(encoded: pipeline.Encoded, vocab: text.Vocabulary, s: Settings, model: str, rng) -> Iterator[tuple]:
    """Every epoch's items and noise words, chunk by chunk (:func:`seqbench.embed.pipeline.epoch_items`): pairs
    for ``skipgram``, windows for ``cbow`` and ``skipgram_windows``."""
    keep = text.keep_probability(vocab.counts, s.sample)
    noise = pipeline.NoiseTable.of_counts(vocab.counts)
    items = "skipgram" if model == "skipgram" else "cbow"
    for _ in range(s.epochs):
        yield from pipeline.epoch_items(encoded, keep, items, s.window, noise, s.negative, rng)


class _Schedule:
    """The learning rate ``lr·max(1 − done/planned, 1e-4)`` over the corpus words trained, and progress."""

    def __init__(self, s: Settings, planned: int, progress: Progress | None):
        self.lr, self.planned, self.progress, self.done = s.lr, planned, progress, 0

    def rate(self, done: int) -> float:
        """The rate after ``done`` corpus words."""
        return self.lr * max(1 - done / self.planned, 1e-4)

    def trained(self, words: int) -> None:
        self.done += words
        if self.progress and words:
            self.progress(words)


def _in_threads(threads: int, work: Iterator[tuple[Callable, int]], schedule: _Schedule) -> None:
    """Run ``(call, words)`` pairs in ``threads`` threads, at most two per thread queued; progress as each ends."""
    with ThreadPoolExecutor(threads) as pool:
        pending: deque = deque()
        for call, words in work:
            pending.append((pool.submit(call), words))
            while len(pending) > 2 * threads or (pending and pending[0][0].done()):
                future, done = pending.popleft()
                future.result()
                schedule.trained(done)
        for future, done in pending:
            future.result()
            schedule.trained(done)


#: corpus words per launch of a device's corpus trainer (``TrainingSteps.corpus``), at most
DEVICE_CHUNK_WORDS = 1 << 20


def _on_device(corpus: Callable, state: dict, encoded: pipeline.Encoded, vocab: text.Vocabulary, s: Settings,
               schedule: _Schedule) -> None:
    """Skip-gram with shared noise words drawn and trained on the device (``TrainingSteps.corpus``), chunk by
    chunk of whole sentences (1/64 of the corpus, between ``pipeline.CHUNK_WORDS`` and :data:`DEVICE_CHUNK_WORDS`
    words), each at the rate after the words handed out before it."""
    train = corpus(encoded, text.keep_probability(vocab.counts, s.sample), pipeline.NoiseTable.of_counts(vocab.counts),
                   s.window, s.negative, s.seed)
    words = min(DEVICE_CHUNK_WORDS, max(pipeline.CHUNK_WORDS, encoded.words // 64))
    for epoch in range(s.epochs):
        for part in encoded.chunks(words):
            train(state, part, epoch, schedule.rate(schedule.done))
            schedule.trained(part.stop - part.start)


def train_word2vec(backend, device: str, dtype: str, path: Path, s: Settings, vocab: text.Vocabulary | None = None,
                   progress: Progress | None = None) -> Trained:
    """Skip-gram or CBOW with negative sampling on ``backend``'s update step (see the module docstring)."""
    vocab = vocab or text.Vocabulary.build(path, s.min_count, s.fraction)
    steps = backend.training_steps(device, dtype)
    model = step_model(steps, s)
    step = steps.windows() if model == "skipgram_windows" else steps.negative_sampling
    rng = np.random.default_rng(s.seed)
    V = len(vocab)
    state = {"E_in": backend.to_device((2 * rng.random((V, s.dim)) - 1) / s.dim, device, dtype),
             "E_out": backend.to_device(np.zeros((V, s.dim)), device, dtype)}
    M = 1 if model == "skipgram" else 2 * s.window
    batch = s.batch or BATCH[model]
    _warm_up(step, backend, device, dtype, {k: (V, s.dim) for k in state},
             (np.zeros((batch, M), np.int64), np.zeros(batch, np.int64), np.zeros((batch, s.negative), np.int64)))
    schedule = _Schedule(s, s.epochs * vocab.total, progress)
    backend.synchronize(device)
    start = time.perf_counter()
    encoded = pipeline.Encoded.encode(path, vocab, s.fraction)
    chunks = epochs(encoded, vocab, s, model, rng)
    if model == "skipgram_windows" and steps.corpus is not None:  # the items drawn on the device
        _on_device(steps.corpus, state, encoded, vocab, s, schedule)
    elif steps.sequential:  # a chunk's rate follows the words handed out before it, as gensim's jobs
        def work():
            handed = 0
            for *arrays, words in chunks:
                yield (lambda a=(*arrays, schedule.rate(handed)): step(state, *a)), words
                handed += words
        _in_threads(s.threads, work(), schedule)
    else:
        for w_ctx, w_o, w_neg, words in _fixed_batches(chunks, batch):
            if len(w_o):
                state = step(state, w_ctx, w_o, w_neg, schedule.rate(schedule.done))
            schedule.trained(words)
    backend.synchronize(device)
    seconds = time.perf_counter() - start
    return Trained(vocab, backend.to_numpy(state["E_in"]).astype(np.float64), seconds, schedule.done,
                   {"step": model})


def train_glove(backend, device: str, dtype: str, path: Path, s: Settings, vocab: text.Vocabulary | None = None,
                progress: Progress | None = None) -> Trained:
    """GloVe by AdaGrad over the nonzero co-occurrence counts (see the module docstring)."""
    vocab = vocab or text.Vocabulary.build(path, s.min_count, s.fraction)
    X = text.cooccurrence_counts(path, vocab, s.window, s.fraction)
    steps = backend.training_steps(device, dtype)
    step = steps.glove
    rng = np.random.default_rng(s.seed)
    V = len(vocab)
    init = {"theta": (V, s.dim), "e": (V, s.dim), "b": (V,), "b_prime": (V,)}
    state = {k: backend.to_device((rng.random(shape) - 0.5) / s.dim, device, dtype) for k, shape in init.items()}
    state.update({f"G_{k}": backend.to_device(np.ones(shape), device, dtype) for k, shape in init.items()})
    entries = len(X.data)
    size = min(GLOVE_CHUNK if steps.sequential else s.batch or BATCH["glove"], entries)
    _warm_up(step, backend, device, dtype, {k: np.shape(v) for k, v in state.items()},
             (np.zeros(size, np.int64), np.zeros(size, np.int64), np.ones(size)))
    words_per_entry = vocab.total / max(entries, 1)  # progress and throughput in corpus words, as word2vec's
    schedule = _Schedule(s, s.epochs * vocab.total, progress)

    def batches():
        for _ in range(s.epochs):
            order = rng.permutation(entries)
            for first in range(0, entries, size):
                batch = order[first:first + size]
                yield (X.row[batch], X.col[batch], X.data[batch]), round(len(batch) * words_per_entry)

    backend.synchronize(device)
    start = time.perf_counter()
    if steps.sequential:
        _in_threads(s.threads, (((lambda b=b: step(state, *b, s.lr)), words) for b, words in batches()), schedule)
    else:
        for batch, words in batches():
            state = step(state, *batch, s.lr)
            schedule.trained(words)
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


def train_gensim(path: Path, s: Settings, vocab: text.Vocabulary | None = None) -> Trained:
    """The peer: gensim's ``Word2Vec`` on the same corpus (``LineSentence``), settings and ``s.threads`` workers.

    Only training is timed (``build_vocab`` is not), as for the trainers here.
    """
    if s.model == "glove":
        raise ValueError("gensim has no GloVe trainer; its peer rows are skip-gram and CBOW")
    from gensim.models import Word2Vec
    from gensim.models.word2vec import LineSentence

    vocab = vocab or text.Vocabulary.build(path, s.min_count, s.fraction)
    sentences = list(text.sentences_of(path, s.fraction)) if s.fraction < 1 else LineSentence(str(path))
    model = Word2Vec(vector_size=s.dim, window=s.window, negative=s.negative, min_count=s.min_count,
                     sg=int(s.model == "skipgram"), sample=s.sample, alpha=s.lr, workers=s.threads, seed=s.seed,
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
