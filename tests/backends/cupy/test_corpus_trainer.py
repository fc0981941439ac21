"""Skip-gram drawn and trained from the corpus on the device (``kernels/skipgram_corpus.cu``), on the CPU.

The kernel is built for the host (``SEQBENCH_HOST_BUILD``: one lane per warp, one warp taking every run of
positions in order) and driven by the cupy backend's own :class:`~seqbench.backends.cupy.corpus_trainer.CorpusTrainer`
over NumPy arrays. Its record mode returns the pairs it trained and the positions it kept, so:

(a) the update: the parameters after a launch equal the reference's ``negative_sampling_state_step`` with
    ``B = 1`` applied to the recorded pairs in the kernel's order (float64 to 1e-12; float32 judged by the
    tolerance model against the same reference run in float32);
(b) the draws: every window lies inside its sentence and its reach, counts kept words only, and trains every
    kept centre that has a context; a window's pairs share their noise words; reaches are uniform, each word is
    kept at its keep probability, and the noise words follow ``P_n`` (χ²); nothing depends on how the chunk is
    cut into runs;
(c) each check fails on a kernel built with a deliberate mistake (``SB_CORPUS_MUTANT``) or given a wrong table.

Then the trainer's hook (``TrainingSteps.corpus`` in :func:`seqbench.embed.trainers.train_word2vec`), and, where a
GPU is present, the GPU's draws and one-warp update against the host build's; ``SEQBENCH_CORPUS_TIMING`` opts in
to timing it on a large corpus across launch configurations.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import subprocess
import time
import types

import numpy as np
import pytest
from chi_square import chi_square_p_value
from scipy import stats

from seqbench import catalog
from seqbench.backends.cupy import corpus_trainer
from seqbench.backends.cupy.host_kernels import HostKernels
from seqbench.backends.cupy.toolchain import KERNELS_DIR, host_build_command
from seqbench.backends.numpy_backend import NumpyBackend
from seqbench.embed import corpus, pipeline, trainers
from seqbench.precision import calibration, faithful, tolerance
from seqbench.reference import noise_distribution, training

SOURCE = "skipgram_corpus.cu"
#: the deliberate mistakes the kernel can be built with: {"STALE_TARGETS": 1, ...}
MUTANTS = {name: int(value) for name, value in
           re.findall(r"#define SB_MUTANT_(\w+) (\d+)", (KERNELS_DIR / SOURCE).read_text())}
V, D, K, WINDOW, SAMPLE, SEED = 30, 8, 4, 3, 1e-2, 7
ALPHA = 1e-3  # the statistical checks' level


@pytest.fixture(scope="session")
def build(tmp_path_factory):
    """``build(mutant=0)``: the kernel's host build (a mutant's, named as in :data:`MUTANTS`), once per session."""
    built = {}

    def lib(mutant: str | None = None) -> HostKernels:
        if mutant not in built:
            out = tmp_path_factory.mktemp("skipgram_corpus") / f"lib{mutant or 'kernel'}.so"
            try:
                command = host_build_command(out, source=SOURCE,
                                             defines=(f"-DSB_CORPUS_MUTANT={MUTANTS[mutant] if mutant else 0}",))
            except FileNotFoundError as error:
                pytest.skip(f"cannot build the kernel for the host: {error}")
            done = subprocess.run(command, capture_output=True, text=True)
            assert done.returncode == 0, f"$ {' '.join(command)}\n{done.stderr}"
            built[mutant] = HostKernels(out)
        return built[mutant]

    return lib


@dataclasses.dataclass
class Corpus:
    encoded: pipeline.Encoded
    counts: np.ndarray
    keep: np.ndarray
    noise: pipeline.NoiseTable
    dist: np.ndarray  # P_n


def synthetic(words: int, seed: int = 0) -> Corpus:
    """Zipf-distributed words in sentences of 0 to 24 words (empty and one-word sentences among them)."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(0, 25, words // 10)
    ids = rng.choice(V, lengths.sum(), p=(p := 1 / np.arange(1, V + 1)) / p.sum()).astype(np.int32)
    counts = np.bincount(ids, minlength=V)
    assert counts.min() > 0
    encoded = pipeline.Encoded(ids, np.concatenate([[0], np.cumsum(lengths)]))
    return Corpus(encoded, counts, corpus.keep_probability(counts, SAMPLE), pipeline.NoiseTable.of_counts(counts),
                  noise_distribution(counts))


def initial_state(dtype, seed=1) -> dict:
    """Random input and output rows (both: the output rows' updates then change what later pairs see)."""
    rng = np.random.default_rng(seed)
    return faithful.round_tree({"E_in": 0.5 * rng.standard_normal((V, D)), "E_out": 0.5 * rng.standard_normal((V, D))},
                               dtype)


#: two chunks of two epochs: ((first, last) as fractions of the corpus, epoch, learning rate)
CHUNKS = ((0.0, 0.6, 0, 0.25), (0.6, 1.0, 1, 0.125))


def parts(encoded: pipeline.Encoded):
    """:data:`CHUNKS` as slices of whole sentences (as the trainer cuts them), with their epoch and rate."""
    cut = [int(encoded.starts[np.searchsorted(encoded.starts, f * encoded.words)]) for f in (0.0, 0.6, 1.0)]
    return [(slice(a, b), epoch, lr) for a, b, (_, _, epoch, lr) in zip(cut[:-1], cut[1:], CHUNKS)]


def train(host: HostKernels, c: Corpus, dtype: str, segment=16, noise=None, keep=None):
    """``(state before, state after, records)``: :data:`CHUNKS` trained in record mode."""
    trainer = host.corpus_trainer(c.encoded, c.keep if keep is None else keep, noise or c.noise, WINDOW, K, SEED,
                                  segment=segment)
    before = initial_state(dtype)
    state = {k: v.astype(dtype) for k, v in before.items()}
    records = []
    for part, epoch, lr in parts(c.encoded):
        records.append((part, trainer.record(state, part, epoch, lr)))
    return before, state, records


def reference(state: dict, records, dtype=None) -> dict:
    """The reference's step with B = 1 on each recorded pair in order (in ``dtype``'s arithmetic if given)."""
    if dtype:
        state = faithful.in_precision(state, dtype)
    for (_, _, _, lr), (_, record) in zip(CHUNKS, records):
        for row in record.pairs:
            state = training.negative_sampling_state_step(state, row[None, 4:5], row[3:4], row[None, 5:], lr)
    return faithful.as_float64(state)


def update_verdict(before, after, records, dtype):
    """float64: the largest difference from the reference (≤ 1e-12 passes); float32: the tolerance model's verdict
    against the reference run in float32 (as training_check judges a step)."""
    expected = reference(before, records)
    actual = faithful.as_float64(after)
    if dtype == "float64":
        return max(float(np.max(np.abs(actual[k] - expected[k]) / (1 + np.abs(expected[k])))) for k in expected)
    control = reference(before, records, "float32")
    pairs = sum(len(r.pairs) for _, r in records)
    cap = tolerance.cap(catalog.get("cbow_negative_sampling_loss"), {"V": V, "d": D, "B": pairs, "M": 1, "K": K},
                        "float32", "vjp")
    return tolerance.judge(calibration.leaf_errors(actual, expected, "float32"),
                           calibration.leaf_errors(control, expected, "float32"), cap)


def draw_failures(c: Corpus, records, window=WINDOW) -> dict:
    """The rules of the draws (pipeline.py's) that ``records`` break, each with what broke it; ``{}``: none."""
    ids, starts = c.encoded.ids, c.encoded.starts
    sentence = np.repeat(np.arange(len(starts) - 1), np.diff(starts))
    failures = {}
    reaches, negatives, kept_words = [], [], []
    for part, record in records:
        kept = np.zeros(len(ids), bool)
        kept[part] = record.kept
        kept_words.append(np.stack([ids[part], record.kept]))
        P = record.pairs
        if not (np.array_equal(record.centre, ids[record.centre_pos]) and
                np.array_equal(record.context, ids[record.context_pos])):
            failures["ids"] = "a recorded id is not the word at its recorded position"
        windows = np.split(np.arange(len(P)), np.flatnonzero(np.diff(record.centre_pos)) + 1) if len(P) else []
        trained = set()
        for rows in windows:
            t, b = int(P[rows[0], 0]), int(P[rows[0], 2])
            trained.add(t)
            same = np.flatnonzero(kept & (sentence == sentence[t]))
            i = np.searchsorted(same, t)
            expected = np.concatenate([same[max(i - b, 0):i], same[i + 1:i + 1 + b]])
            if not (part.start <= t < part.stop and kept[t] and 1 <= b <= window
                    and np.array_equal(P[rows, 1], expected)):
                failures.setdefault("windows", f"centre {t} (reach {b}): context {P[rows, 1].tolist()}, expected "
                                               f"the nearest kept words of its sentence {expected.tolist()}")
            if not (P[rows, 5:] == P[rows[0], 5:]).all():
                failures.setdefault("shared noise", f"the pairs of the window at {t} have different noise words")
            reaches.append(b)
            negatives.append(P[rows[0], 5:])
        has_context = [t for t in range(part.start, part.stop)
                       if kept[t] and (kept & (sentence == sentence[t])).sum() > 1]
        if set(has_context) - trained:
            failures.setdefault("windows", f"kept centres with a context left untrained: "
                                           f"{sorted(set(has_context) - trained)[:5]}")
    if stats.chisquare(np.bincount(reaches, minlength=window + 1)[1:]).pvalue < ALPHA:
        failures["reach"] = f"reaches not uniform on 1..{window}: {np.bincount(reaches)[1:].tolist()}"
    words, kept = np.concatenate(kept_words, axis=1)
    for w in range(V):
        n, k, p = (words == w).sum(), kept[words == w].sum(), c.keep[w]
        if p == 1 and k < n or p < 1 and abs(k - n * p) > 4.5 * np.sqrt(n * p * (1 - p)):
            failures.setdefault("subsampling", f"word {w} kept {k} of {n} times at keep probability {p:.3f}")
    if chi_square_p_value(np.concatenate(negatives), c.dist) < ALPHA:
        failures["noise"] = "the noise words do not follow P_n (χ²)"
    return failures


# ---- (a) the update --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_one_warp_trains_the_reference_pair_by_pair(build, dtype):
    c = synthetic(2000)
    before, after, records = train(build(), c, dtype)
    assert sum(len(r.pairs) for _, r in records) > 1000 and all(a.dtype == dtype for a in after.values())
    verdict = update_verdict(before, after, records, dtype)
    if dtype == "float64":
        assert verdict <= 1e-12, f"{verdict:.3g} from the reference applied pair by pair"
    else:
        w = verdict.worst
        assert verdict.passed, f"{w.leaf} {w.metric} {w.error:.3g} eps > budget {w.budget:.3g}"


def test_the_shared_memory_the_launch_gives_is_what_the_kernel_uses(build):
    lib = build().lib
    for dtype, suffix in (("float32", "f32"), ("float64", "f64")):
        fn = getattr(lib, f"skipgram_corpus_warp_bytes_{suffix}")
        fn.restype = __import__("ctypes").c_longlong
        for d, negative, window in ((1, 1, 1), (8, 4, 3), (100, 5, 5), (300, 15, 10), (33, 2, 7)):
            assert fn(d, negative, window) == corpus_trainer.warp_bytes(d, negative, window, dtype)


# ---- (b) the draws ---------------------------------------------------------------------------------------------


def test_the_draws_follow_the_pipelines_rules(build):
    c = synthetic(30000)
    _, _, records = train(build(), c, "float32")
    assert draw_failures(c, records) == {}


def uniforms(seed: int, epoch: int, t: np.ndarray, stream: int) -> np.ndarray:
    """The kernel header's ``u(t, s)`` in NumPy (uint64 arithmetic wraps, as C's)."""

    def mix64(z):
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))

    G, H = np.uint64(0x9E3779B97F4A7C15), np.uint64(0xD1B54A32D192ED03)
    with np.errstate(over="ignore"):
        key = mix64(mix64(np.array([seed], np.uint64) + G) ^ (np.uint64(epoch) + G))
        h = mix64(mix64(key ^ (np.asarray(t).astype(np.uint64) * G)) ^ (np.uint64(stream + 1) * H))
    return (h >> np.uint64(11)).astype(np.float64) * 2.0**-53


def test_the_draws_are_the_headers_formulas(build):
    """Keep, reach and noise draws recomputed from the equations of the kernel's header."""
    c = synthetic(5000)
    _, _, records = train(build(), c, "float32")
    for (part, epoch, _), (_, record) in zip(parts(c.encoded), records):
        t = np.arange(part.start, part.stop)
        np.testing.assert_array_equal(record.kept, uniforms(SEED, epoch, t, 0) < c.keep[c.encoded.ids[t]])
        u = uniforms(SEED, epoch, record.centre_pos, 1)
        np.testing.assert_array_equal(record.reach, np.minimum(1 + (u * WINDOW).astype(np.int64), WINDOW))
        for k in range(K):
            x = uniforms(SEED, epoch, record.centre_pos, 2 + k) * V
            column = np.minimum(x.astype(np.int64), V - 1)
            noise = np.where(x - column < c.noise.prob[column], column, c.noise.alias[column])
            np.testing.assert_array_equal(record.negatives[:, k], noise)


def test_the_draws_and_the_update_do_not_depend_on_how_the_chunk_is_cut(build):
    """Runs of 1, 7 or all positions: the same pairs and the same parameters (one warp trains in corpus order)."""
    c = synthetic(1000)
    runs = [train(build(), c, "float64", segment=segment) for segment in (1, 7, 10**6)]
    for _, after, records in runs[1:]:
        for (_, r), (_, r0) in zip(records, runs[0][2]):
            np.testing.assert_array_equal(r.pairs, r0.pairs)
            np.testing.assert_array_equal(r.kept, r0.kept)
        for k in after:
            np.testing.assert_array_equal(after[k], runs[0][1][k])


def test_a_chunk_of_no_words_trains_nothing(build):
    c = synthetic(200)
    trainer = build().corpus_trainer(c.encoded, c.keep, c.noise, WINDOW, K, SEED)
    state = initial_state("float64")
    before = {k: v.copy() for k, v in state.items()}
    record = trainer.record(state, slice(50, 50), 0, 0.1)
    assert len(record.pairs) == 0 and len(record.kept) == 0
    for k in state:
        np.testing.assert_array_equal(state[k], before[k])


@pytest.mark.parametrize(("part", "error"), [(slice(0, 10**9), ValueError), (slice(5, 10, 2), ValueError)])
def test_bad_arguments_are_refused(build, part, error):
    c = synthetic(200)
    trainer = build().corpus_trainer(c.encoded, c.keep, c.noise, WINDOW, K, SEED)
    with pytest.raises(error, match="part must be"):
        trainer(initial_state("float64"), part, 0, 0.1)
    with pytest.raises(ValueError, match=r"must be \(30, d\)"):
        trainer({"E_in": np.zeros((V + 1, D)), "E_out": np.zeros((V + 1, D))}, slice(0, 10), 0, 0.1)
    with pytest.raises(TypeError, match="float32 or float64"):
        trainer({"E_in": np.zeros((V, D), np.float16), "E_out": np.zeros((V, D), np.float16)}, slice(0, 10), 0, 0.1)
    with pytest.raises(ValueError, match="window must be"):
        build().corpus_trainer(c.encoded, c.keep, c.noise, 0, K, SEED)


# ---- (c) each check can fail -----------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_target_rows_not_carried_between_pairs_fail_the_update_check(build, dtype):
    before, after, records = train(build("STALE_TARGETS"), synthetic(2000), dtype)
    verdict = update_verdict(before, after, records, dtype)
    assert (verdict > 1e-6) if dtype == "float64" else not verdict.passed, verdict


@pytest.mark.parametrize(("mutant", "rule"), [("DROPPED_COUNT", "windows"), ("CROSS_SENTENCE", "windows"),
                                              ("NOISE_PER_PAIR", "shared noise")])
def test_a_kernel_drawing_wrongly_fails_the_draw_checks(build, mutant, rule):
    c = synthetic(30000)
    assert rule in draw_failures(c, train(build(mutant), c, "float32")[2])


def test_wrong_tables_fail_the_draw_checks(build):
    c = synthetic(30000)
    rolled = pipeline.NoiseTable(c.dist)
    rolled.alias = np.roll(rolled.alias, 1)  # every column's overflow given to the wrong word
    assert set(draw_failures(c, train(build(), c, "float32", noise=rolled)[2])) == {"noise"}
    assert set(draw_failures(c, train(build(), c, "float32", keep=np.sqrt(c.keep))[2])) == {"subsampling"}


# ---- the trainer's hook ----------------------------------------------------------------------------------------


class HostCorpusBackend(NumpyBackend):
    """numpy's steps with the corpus trainer on the kernel's host build, every call to it logged."""

    name = "host-corpus"

    def __init__(self, host: HostKernels):
        self.host, self.calls, self.made = host, [], 0

    def training_steps(self, device, dtype):
        def corpus(encoded, keep, noise, window, negative, seed):
            self.made += 1
            trainer = self.host.corpus_trainer(encoded, keep, noise, window, negative, seed)

            def train(state, part, epoch, lr):
                self.calls.append((part, epoch, lr))
                return trainer(state, part, epoch, lr)
            return train

        return dataclasses.replace(super().training_steps(device, dtype), corpus=corpus)


def test_train_word2vec_hands_the_corpus_to_the_device_in_chunks_at_the_decaying_rate(build, monkeypatch):
    monkeypatch.setattr(trainers, "DEVICE_CHUNK_WORDS", 3000)
    path = corpus.gensim_data("lee_background.cor")
    s = trainers.Settings(model="skipgram", dim=8, epochs=2, fraction=0.2, seed=3)
    vocab = corpus.Vocabulary.build(path, s.min_count, s.fraction)
    backend = HostCorpusBackend(build())
    trained = trainers.train(backend, "cpu", "float32", path, s, vocab)
    assert backend.made == 1 and trained.words == s.epochs * vocab.total and trained.extra["step"] == "skipgram_windows"
    encoded = pipeline.Encoded.encode(path, vocab, s.fraction)
    parts = list(encoded.chunks(3000))
    assert len(parts) > 2 and [(p, e) for p, e, _ in backend.calls] == [(p, e) for e in range(2) for p in parts]
    handed = np.cumsum([0] + [p.stop - p.start for p, _, _ in backend.calls])[:-1]
    expected = s.lr * np.maximum(1 - handed / (s.epochs * vocab.total), 1e-4)  # the rate after the words handed out
    np.testing.assert_allclose([lr for *_, lr in backend.calls], expected)
    assert np.all(np.isfinite(trained.vectors))


def test_cbow_and_pairs_keep_the_per_batch_steps(build):
    path = corpus.gensim_data("lee_background.cor")
    vocab = corpus.Vocabulary.build(path, 5, 0.05)
    for s in (trainers.Settings(model="cbow", dim=4, epochs=1, fraction=0.05),
              trainers.Settings(model="skipgram", dim=4, epochs=1, fraction=0.05, share_negatives=False)):
        backend = HostCorpusBackend(build())
        trainers.train(backend, "cpu", "float32", path, s, vocab)
        assert backend.made == 0, s.model


def test_the_device_trainer_learns_on_a_shipped_corpus(build):
    path = corpus.gensim_data("lee_background.cor")
    s = trainers.Settings(model="skipgram", dim=50, epochs=3, seed=1)
    run = trainers.train(HostCorpusBackend(build()), "cpu", "float32", path, s)
    frequent = run.vectors[:50] / np.linalg.norm(run.vectors[:50], axis=1, keepdims=True)
    untrained = np.random.default_rng(0).random(run.vectors.shape) - 0.5
    rest = untrained[:50] / np.linalg.norm(untrained[:50], axis=1, keepdims=True)
    # as tests/embed/test_embed.py's: trained vectors of frequent words share directions, random ones do not
    assert np.abs(frequent @ frequent.T).mean() > 2 * np.abs(rest @ rest.T).mean()


def test_the_launch_plan_and_its_override():
    per_warp = corpus_trainer.warp_bytes(100, 5, 5, "float32")
    h100 = {"sms": 132, "shared_per_sm": 228 * 1024, "shared_per_block": 227 * 1024}
    g = corpus_trainer.plan(1 << 20, per_warp, **h100)
    assert g.warps == 8 and g.shared == 8 * per_warp <= corpus_trainer.DEFAULT_SHARED
    assert g.segments * g.segment >= 1 << 20 > (g.segments - 1) * g.segment and g.segment >= corpus_trainer.MIN_SEGMENT
    assert g.blocks * g.warps * corpus_trainer.RUNS_PER_WARP >= g.segments * 0.9
    assert corpus_trainer.plan(100, per_warp, **h100).segments == 4  # runs of MIN_SEGMENT at least
    g = corpus_trainer.plan(1000, per_warp, **h100, **corpus_trainer.launch_options("segment=10, warps=1,blocks=3"))
    assert (g.segment, g.segments, g.warps, g.blocks) == (10, 100, 1, 3)
    with pytest.raises(ValueError, match="segment=N"):
        corpus_trainer.launch_options("segments=4")
    with pytest.raises(ValueError, match="shared memory per warp"):
        corpus_trainer.plan(1000, 300 * 1024, **h100)


class StandInDevice:
    """CuPy and the GpuKernels of an H100-like device, stood in for by NumPy and the host build: every launch is
    logged with its grid, block and shared memory and run by the host build's one warp."""

    ATTRIBUTES = {"MultiProcessorCount": 132, "MaxSharedMemoryPerMultiprocessor": 228 * 1024,
                  "MaxSharedMemoryPerBlockOptin": 227 * 1024, "MaxThreadsPerMultiProcessor": 2048}

    class Function:
        max_dynamic_shared_size_bytes = 48 * 1024

        def __init__(self, device, name, dtype):
            self.device, self.name, self.dtype = device, name, dtype

        def __call__(self, grid, block, args, shared_mem=0):
            self.device.launches.append((grid, block, shared_mem))
            self.device.host.launch_typed(self.name, self.dtype, None, *args)

    def __init__(self, host: HostKernels):
        self.host, self.launches, self.entered = host, [], []
        runtime = types.SimpleNamespace(deviceGetAttribute=lambda attribute, index: self.ATTRIBUTES[attribute],
                                        **{f"cudaDevAttr{name}": name for name in self.ATTRIBUTES})
        self.cupy = types.SimpleNamespace(cuda=types.SimpleNamespace(runtime=runtime, Device=self.device),
                                          asarray=np.asarray, zeros=np.zeros, asnumpy=np.asarray)

    @contextlib.contextmanager
    def device(self, index):
        self.entered.append(index)
        yield

    def function(self, name, dtype):
        return self.Function(self, name, dtype)


def test_the_gpu_launcher_passes_the_kernel_its_arguments_and_geometry(build):
    """gpu_trainer on a stand-in device: the planned grid, block and shared memory, the arguments the kernel takes
    (the host build runs them), and the same training as the host build's trainer with the same runs."""
    c = synthetic(3000)
    device = StandInDevice(build())
    trainer = corpus_trainer.gpu_trainer(device.cupy, device, 0, c.encoded, c.keep, c.noise, WINDOW, K, SEED,
                                         segment=16)
    state = initial_state("float64")
    on_host = initial_state("float64")
    part = slice(0, c.encoded.words)
    record = trainer.record(state, part, 1, 0.1)
    expected = build().corpus_trainer(c.encoded, c.keep, c.noise, WINDOW, K, SEED, segment=16).record(on_host, part,
                                                                                                         1, 0.1)
    g = record.launch
    assert device.launches == [((g.blocks,), (32 * g.warps,), g.shared)] and device.entered
    assert g.segment == 16 and g.warps == 8 and g.shared == 8 * corpus_trainer.warp_bytes(D, K, WINDOW, "float64")
    np.testing.assert_array_equal(record.pairs, expected.pairs)
    for k in state:
        np.testing.assert_array_equal(state[k], on_host[k])


# ---- on a GPU --------------------------------------------------------------------------------------------------


def _gpu_reason() -> str:
    from seqbench.backends import registry
    from seqbench.backends.protocol import BackendUnavailable

    try:
        registry.backend("cupy")
    except BackendUnavailable as error:
        return str(error)
    return ""


gpu = pytest.mark.skipif(bool(_gpu_reason()), reason=f"no usable cupy backend here: {_gpu_reason()}")


def _gpu_trainer(c: Corpus, **options):
    import cupy

    import seqbench

    backend = seqbench.backend("cupy")
    return cupy, corpus_trainer.gpu_trainer(cupy, backend._gpu(0), 0, c.encoded, c.keep, c.noise, WINDOW, K, SEED,
                                            **options)


@gpu
def test_gpu_draws_are_the_host_builds(build):
    """Many warps at once, the same runs: the same pairs in each run, the same positions kept."""
    c = synthetic(200_000)
    cupy, trainer = _gpu_trainer(c, segment=16)
    state = {k: cupy.asarray(v.astype(np.float32)) for k, v in initial_state("float32").items()}
    part = slice(0, c.encoded.words)
    on_gpu = trainer.record(state, part, 3, 0.025)
    on_host = build().corpus_trainer(c.encoded, c.keep, c.noise, WINDOW, K, SEED, segment=16).record(
        initial_state("float32"), part, 3, 0.025)
    assert on_gpu.launch.blocks > 1 and on_gpu.launch.warps > 1
    np.testing.assert_array_equal(on_gpu.pairs, on_host.pairs)
    np.testing.assert_array_equal(on_gpu.kept, on_host.kept)


@gpu
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_gpu_one_warp_trains_the_reference_pair_by_pair(dtype):
    c = synthetic(2000)
    cupy, trainer = _gpu_trainer(c, warps=1, blocks=1)
    before = initial_state(dtype)
    state = {k: cupy.asarray(v.astype(dtype)) for k, v in before.items()}
    records = [(part, trainer.record(state, part, epoch, lr)) for part, epoch, lr in parts(c.encoded)]
    verdict = update_verdict(before, {k: cupy.asnumpy(v) for k, v in state.items()}, records, dtype)
    assert verdict <= 1e-12 if dtype == "float64" else verdict.passed, verdict


@pytest.mark.skipif(not os.environ.get("SEQBENCH_CORPUS_TIMING"),
                    reason="opt-in: SEQBENCH_CORPUS_TIMING=<a text file of ≥ 100M words> times the GPU trainer")
@gpu
def test_timing_on_a_large_corpus_across_launch_configurations():
    """Words/s of the device trainer alone (the corpus read, encoded and uploaded beforehand) and the vectors'
    quality, for the planned launch and for other run lengths and block shapes: quality must not depend on the
    launch. ``SEQBENCH_CORPUS_EPOCHS`` (default 1) epochs of float32 skip-gram with the trainers' defaults."""
    import cupy

    import seqbench
    from seqbench.embed.command import evaluate

    path = corpus.corpus_path(os.environ["SEQBENCH_CORPUS_TIMING"])
    s = trainers.Settings(model="skipgram", epochs=int(os.environ.get("SEQBENCH_CORPUS_EPOCHS", "1")))
    start = time.perf_counter()
    vocab = corpus.Vocabulary.build(path, s.min_count)
    encoded = pipeline.Encoded.encode(path, vocab)
    print(f"\n{path.name}: {encoded.words:,} words, {len(vocab):,} in the vocabulary; read and encoded in "
          f"{time.perf_counter() - start:.0f}s; {s.epochs} epoch(s), dim {s.dim}, window {s.window}, "
          f"negatives {s.negative}, float32")
    keep, noise = corpus.keep_probability(vocab.counts, s.sample), pipeline.NoiseTable.of_counts(vocab.counts)
    kernels, planned = seqbench.backend("cupy")._gpu(0), s.epochs * vocab.total
    rhos = {}
    for options in ({}, {"segment": 32}, {"segment": 512}, {"warps": 4}, {"warps": 2, "segment": 128}):
        rng = np.random.default_rng(s.seed)
        state = {"E_in": cupy.asarray(((rng.random((len(vocab), s.dim)) - 0.5) / s.dim).astype(np.float32)),
                 "E_out": cupy.zeros((len(vocab), s.dim), np.float32)}
        train = corpus_trainer.gpu_trainer(cupy, kernels, 0, encoded, keep, noise, s.window, s.negative, s.seed,
                                           **options)
        chunk = min(trainers.DEVICE_CHUNK_WORDS, max(pipeline.CHUNK_WORDS, encoded.words // 64))
        cupy.cuda.Device(0).synchronize()
        start, done = time.perf_counter(), 0
        for epoch in range(s.epochs):
            for part in encoded.chunks(chunk):
                train(state, part, epoch, s.lr * max(1 - done / planned, 1e-4))  # as train_word2vec's schedule
                done += part.stop - part.start
        cupy.cuda.Device(0).synchronize()
        seconds = time.perf_counter() - start
        m = evaluate(vocab, cupy.asnumpy(state["E_in"]).astype(np.float64))
        rhos[str(options)] = m["wordsim"]
        print(f"{train.launch_of(slice(0, chunk), s.dim, 'float32')}: {done / seconds:,.0f} words/s, "
              f"wordsim353 ρ {m['wordsim']:.3f} ({m['wordsim_pairs']} pairs), analogies {m['analogy']:.3f}")
    assert max(rhos.values()) - min(rhos.values()) < 0.03, rhos
