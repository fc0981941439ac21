"""Training word vectors end to end: speed and quality per trainer and model, gensim as the peer.

``bench_training.train.track_<metric>(model, trainer, device, fraction, seed)``:
the trainer is a backend's update step in seqbench's shared loop
(:mod:`seqbench.embed.trainers`) or ``gensim`` (its ``Word2Vec``, same corpus,
settings and thread count; skip-gram and CBOW only); ``fraction`` trains
on the first part of the corpus, to see how a gap moves with corpus size;
``seed`` seeds the initial vectors, the subsampling, windows and noise words
(and gensim's), so a quality figure is a mean over seeds with its spread.
Metrics: ``words_per_second`` (corpus words per second of training),
``wordsim`` (WordSim-353 Spearman ρ), ``wordsim_rare`` and
``wordsim_frequent`` (the pairs split at the median count of their rarer
word), ``wordsim_pairs`` (how many pairs had both words in the vocabulary)
and ``analogy`` (accuracy on gensim's analogy questions). One
training run gives every metric of a point: asv's ``setup_cache`` trains
the grid once, in one process, one point after the other (so they do not
compete for the cores; the trainers take turns within each seed), and the
track methods read its results.
``bench_training.memory.peakmem_train`` is the host peak of one training
run per point (a process of its own). ``bench_training.pipeline.time_epoch(items)``
times one epoch of the host pipeline (:mod:`seqbench.embed.pipeline`: the
encoded corpus subsampled, its items and their noise words) for skip-gram's
pairs, CBOW's windows and skip-gram's windows; ``track_words_per_second``
is the corpus words of that epoch over its fastest time.

Grids (``SEQBENCH_GRID``): ``quick`` — ``lee_background.cor`` (60 k words),
dim 50, 1 epoch, fractions 0.5 and 1; every other grid — the setting of the
word2vec quality bar, ``head500.noblanks.cor`` (330 k words), dim 100, window 5, 5
negatives, min count 5, 5 epochs, fractions 0.25 and 1. Seeds: 1–2 on quick, 1–5 otherwise.
"""

import time

import numpy as np

from seqbench.embed import corpus, command as embed, pipeline, trainers
from seqbench.backends import registry
from seqbench.backends.protocol import BackendUnavailable, Unsupported

from . import common

MODELS, DEVICES, METRICS = (list(common.TRAINING[k]) for k in ("models", "devices", "metrics"))
TRAINERS = list(common.trainers())


def skip_reason(model: str, trainer: str, device: str) -> str:
    """Why a point cannot train here ("" = it can)."""
    if trainer == common.PEER:
        if model == "glove":
            return "gensim has no GloVe trainer"
        if device != "cpu":
            return "gensim trains on the CPU"
        try:
            import gensim  # noqa: F401
        except ImportError:
            return "gensim is not installed"
        return ""
    try:
        backend = registry.backend(trainer)
    except (BackendUnavailable, ValueError) as error:
        return str(error)
    if device not in backend.devices():
        return f"{trainer}: no device {device!r} here"
    try:
        backend.training_steps(device, "float32")
    except Unsupported as error:
        return str(error)
    return ""


def train_point(model: str, trainer: str, device: str, fraction: float, seed: int = 1) -> dict:
    """Train one point and measure it: ``{metric: value}``."""
    grid = common.training_grid()
    path = corpus.gensim_data(grid["corpus"])
    s = trainers.Settings(model=model, dim=grid["dim"], epochs=grid["epochs"], fraction=fraction, seed=seed)
    vocab = corpus.Vocabulary.build(path, s.min_count, s.fraction)
    if trainer == common.PEER:
        run = trainers.train_gensim(path, s, vocab=vocab)
    else:
        run = trainers.train(registry.backend(trainer), device, "float32", path, s, vocab)
    return {"words_per_second": run.words_per_second, **embed.evaluate(vocab, run.vectors)}


FRACTIONS, SEEDS = (list(common.training_grid()[k]) for k in ("fractions", "seeds"))


def _points():
    """Every point, the trainers taking turns within each seed (a slow spell of a shared host then falls on
    every trainer alike, not on one trainer's seeds: its ratio to gensim stays honest)."""
    for model in MODELS:
        for device in DEVICES:
            for fraction in FRACTIONS:
                for seed in SEEDS:
                    for trainer in TRAINERS:
                        yield model, trainer, device, fraction, seed


class train:
    """Speed and quality of one training run per point (see the module docstring)."""

    params = [MODELS, TRAINERS, DEVICES, FRACTIONS, SEEDS]
    param_names = ["model", "trainer", "device", "fraction", "seed"]
    timeout = 7200

    def setup_cache(self):
        measured = {}
        for model, trainer, device, fraction, seed in _points():
            measured[(model, trainer, device, fraction, seed)] = (
                skip_reason(model, trainer, device) or train_point(model, trainer, device, fraction, seed))
        return measured

    def setup(self, measured, model, trainer, device, fraction, seed):
        point = measured[(model, trainer, device, fraction, seed)]
        if isinstance(point, str):
            raise NotImplementedError(point)
        self.point = point


def _track(metric):
    def track(self, measured, model, trainer, device, fraction, seed):
        return self.point[metric]

    track.__name__ = f"track_{metric}"
    track.unit = {"words_per_second": "words/s", "wordsim_pairs": "pairs", "analogy": "accuracy"}.get(metric, "ρ")
    return track


for _metric in METRICS:
    setattr(train, f"track_{_metric}", _track(_metric))


class memory:
    """The host peak memory of one training run (the whole corpus, fraction 1)."""

    params = [MODELS, TRAINERS, DEVICES]
    param_names = ["model", "trainer", "device"]
    timeout = 1800

    def setup(self, model, trainer, device):
        reason = skip_reason(model, trainer, device)
        if reason:
            raise NotImplementedError(reason)

    def peakmem_train(self, model, trainer, device):
        train_point(model, trainer, device, 1.0)



class pipeline_epoch:
    """One epoch of the host pipeline on the grid's corpus: subsampling, items and noise words, no training."""

    params = [list(common.PIPELINE_ITEMS)]
    param_names = ["items"]
    timeout = 600

    def setup(self, items):
        grid = common.training_grid()
        path = corpus.gensim_data(grid["corpus"])
        vocab = corpus.Vocabulary.build(path)
        self.encoded = pipeline.Encoded.encode(path, vocab)
        self.settings = trainers.Settings(model="skipgram" if items == "skipgram_windows" else items, epochs=1)
        self.vocab, self.items = vocab, items

    def _epoch(self):
        for _ in trainers.epochs(self.encoded, self.vocab, self.settings, self.items, np.random.default_rng(1)):
            pass

    def time_epoch(self, items):
        self._epoch()

    def track_words_per_second(self, items):
        fastest = min(_seconds(self._epoch) for _ in range(3))
        return self.encoded.words / fastest

    track_words_per_second.unit = "words/s"


def _seconds(call) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start
