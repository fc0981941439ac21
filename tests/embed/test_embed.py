"""The embedding trainers: corpus handling, the update steps against the reference, quality metrics, the CLI."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from seqbench.embed import corpus, quality, trainers
from seqbench.backends import registry
from seqbench.precision import training_check
from seqbench.backends.numpy_backend import NumpyBackend
from seqbench.backends.protocol import TrainingSteps
from seqbench.reference import cooccurrence, training

pytest.importorskip("gensim", reason="the corpora and the quality test sets ship with gensim")
ROOT = Path(__file__).resolve().parents[2]
BACKENDS = [name for name in ("numpy", "torch", "jax") if name in registry.available()]  # minibatch steps
SEQUENTIAL = [name for name in ("numba",) if name in registry.available()]  # one item after the other


# --- the update steps ----------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", training_check.DTYPES)
@pytest.mark.parametrize("model", training_check.STEPS)
@pytest.mark.parametrize("backend", BACKENDS + SEQUENTIAL)
def test_one_minibatch_update_equals_the_reference_update(backend, model, dtype):
    verdict = training_check.check_step(registry.backend(backend), "cpu", dtype, model)
    w = verdict.worst
    assert verdict.passed, f"{backend} {model} {dtype}: {w.leaf} {w.metric} {w.error:.3g} eps > {w.budget:.3g}"


class WrongSteps(NumpyBackend):
    """A plug-in whose steps are the reference's but for one deliberate mistake, named by ``mistake``."""

    name = "wrong-steps"

    def __init__(self, mistake):
        self.mistake = mistake

    @staticmethod
    def item_by_item(step):
        """``step`` applied to one item after the other, in place: the reference's sequential update."""
        def sequential(state, *batch):
            *arrays, lr = batch
            new = state
            for b in range(len(arrays[0])):
                new = step(new, *(np.asarray(a)[b:b + 1] for a in arrays), lr)
            for k, v in new.items():
                state[k][...] = v
            return state
        return sequential

    def training_steps(self, device, dtype):
        def negative_sampling(state, w_ctx, w_o, w_neg, lr):
            if self.mistake == "mean-share":  # CBOW's context rows get the gradient of the mean, not word2vec's dh
                E_in, E_out = training.negative_sampling_step(state["E_in"], state["E_out"], w_ctx, w_o, w_neg, lr)
                share = 1 / (w_ctx >= 0).sum(axis=1).mean()
                return {"E_in": state["E_in"] + share * (E_in - state["E_in"]), "E_out": E_out}
            if self.mistake == "no-negatives":
                w_neg = np.broadcast_to(w_o[:, None], w_neg.shape)  # the noise words replaced by the centre word
            new = training.negative_sampling_state_step(state, w_ctx, w_o, w_neg, lr)
            if self.mistake == "scaled":
                new = {k: v + 1e-5 * (v - state[k]) for k, v in new.items()}
            return new

        def glove(state, rows, cols, x, lr):
            if self.mistake == "sgd":  # plain SGD: no AdaGrad scaling
                flat = {**state, **{f"G_{k}": np.zeros_like(state[f"G_{k}"]) for k in training.GLOVE_PARAMETERS}}
                new = training.glove_state_step(flat, rows, cols, x, lr)
                return {**new, **{k: state[k] for k in state if k.startswith("G_")}}
            return training.glove_state_step(state, rows, cols, x, lr)

        def windows(state, w_ctx, w_o, w_neg, lr):  # "padding-trains": the -1 padding read as word 0
            return training.skipgram_window_state_step(state, np.maximum(w_ctx, 0), w_o, w_neg, lr)

        if self.mistake == "padding-trains":
            return TrainingSteps(negative_sampling, glove, skipgram_windows=windows)
        if self.mistake == "summed-as-sequential":  # one summed minibatch step, declared item by item
            return TrainingSteps(negative_sampling, glove, sequential=True)
        if self.mistake == "sequential-as-summed":  # item by item, declared one summed minibatch step
            return TrainingSteps(self.item_by_item(negative_sampling), self.item_by_item(glove))
        return TrainingSteps(negative_sampling, glove)


@pytest.mark.parametrize("mistake, model", [("mean-share", "cbow"), ("no-negatives", "skipgram"),
                                            ("scaled", "skipgram"), ("scaled", "cbow"), ("sgd", "glove"),
                                            ("summed-as-sequential", "skipgram"), ("summed-as-sequential", "glove"),
                                            ("sequential-as-summed", "cbow"), ("sequential-as-summed", "glove"),
                                            ("padding-trains", "skipgram_windows")])
def test_a_wrong_update_step_fails(mistake, model):
    with np.errstate(divide="ignore", invalid="ignore"):
        verdict = training_check.check_step(WrongSteps(mistake), "cpu", "float32", model)
    assert not verdict.passed, f"{mistake} passed: worst {verdict.worst}"


def test_training_refuses_half_precision():
    with pytest.raises(ValueError, match="--dtype must be one of"):
        training_check.check_step(registry.backend("numpy"), "cpu", "float16", "skipgram")


# --- corpus ----------------------------------------------------------------------------------------

@pytest.fixture
def text(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text("a b a c a b\nb a d\n\nc a b a\n")
    return path


def test_vocabulary_is_counted_in_one_pass_most_frequent_first(text):
    vocab = corpus.Vocabulary.build(text, min_count=2)
    assert vocab.words == ("a", "b", "c") and list(vocab.counts) == [6, 4, 2] and vocab.corpus_words == 13
    assert list(vocab.ids(["c", "d", "a"])) == [2, 0]  # d is below min_count: dropped
    with pytest.raises(ValueError, match="--min-count 9 keeps no word"):
        corpus.Vocabulary.build(text, min_count=9)


def test_long_lines_are_cut_into_sentences_as_gensim_does(tmp_path, monkeypatch):
    monkeypatch.setattr(corpus, "MAX_SENTENCE", 4)
    path = tmp_path / "long.txt"
    path.write_text(" ".join(map(str, range(10))) + "\n")
    assert [len(s) for s in corpus.sentences_of(path)] == [4, 4, 2]


def test_subsampling_keeps_rare_words_and_drops_frequent_ones():
    keep = corpus.keep_probability(np.array([1_000_000, 1000, 10]), sample=1e-3)
    f = 1_000_000 / 1_001_010
    assert keep[0] == pytest.approx((np.sqrt(f / 1e-3) + 1) * 1e-3 / f) and keep[0] < 0.05
    assert keep[1] == keep[2] == 1.0
    assert list(corpus.keep_probability(np.array([5, 5]), 0)) == [1.0, 1.0]


def test_cooccurrence_sums_the_reference_counts_of_each_sentence(text):
    vocab = corpus.Vocabulary.build(text, min_count=1)
    X = corpus.cooccurrence_counts(text, vocab, 2, chunk=1).toarray()
    expected = sum(cooccurrence(vocab.ids(s), len(vocab), 2).toarray() for s in corpus.sentences_of(text) if len(s) > 1)
    np.testing.assert_allclose(X, expected)


def test_corpus_argument_names_what_it_expected(tmp_path):
    assert corpus.corpus_path("lee_background.cor").name == "lee_background.cor"
    for bad, message in ((str(tmp_path / "none.txt"), "no file"), (str(tmp_path), "got the folder")):
        with pytest.raises(ValueError, match=message):
            corpus.corpus_path(bad)


# --- quality -----------------------------------------------------------------------------------------

def test_wordsim_is_spearman_of_cosines_against_the_human_scores(tmp_path):
    path = tmp_path / "sim.tsv"
    path.write_text("# header\nA\tb\t9.0\na\tc\t5.0\na\td\t1.0\na\tzzz\t3.0\n")
    words = ["a", "b", "c", "d"]
    angles = {"a": 0.0, "b": 0.1, "c": 0.8, "d": 1.5}
    good = np.array([[np.cos(angles[w]), np.sin(angles[w])] for w in words])
    assert quality.wordsim(words, good, path) == {"spearman": pytest.approx(1.0), "pairs": 3, "of": 4}
    assert quality.wordsim(words, good[[0, 3, 2, 1]], path)["spearman"] == pytest.approx(-1.0)


def test_wordsim_agrees_with_gensims_own_evaluator():
    """The report's ρ is gensim's ``evaluate_word_pairs`` Spearman on the same vectors (WordSim-353 as shipped)."""
    from gensim.models import KeyedVectors

    vocab = corpus.Vocabulary.build(corpus.gensim_data("lee_background.cor"), min_count=2)
    vectors = np.random.default_rng(4).standard_normal((len(vocab), 16))
    kv = KeyedVectors(16)
    kv.add_vectors(list(vocab.words), vectors.astype(np.float32))
    _, (spearman, _), oov = kv.evaluate_word_pairs(str(corpus.gensim_data("wordsim353.tsv")))
    ours = quality.wordsim(vocab.words, vectors)
    assert ours["spearman"] == pytest.approx(spearman, abs=1e-6)
    assert ours["of"] - ours["pairs"] == pytest.approx(oov / 100 * ours["of"])


def test_analogies_are_3cosadd_with_the_question_words_excluded(tmp_path):
    path = tmp_path / "q.txt"
    path.write_text(": section\nman king woman queen\nman king woman prince\nx y z w\n")
    words = ["man", "king", "woman", "queen", "prince"]
    vectors = np.array([[1, 0, 0, 0], [1, 1, 0, 0], [0, 0, 1, 0], [0, 1, 1, 0], [0.1, 0.1, 0.1, 1]], dtype=float)
    assert quality.analogies(words, vectors, path) == {"accuracy": 0.5, "questions": 2, "of": 3}


def test_vectors_are_written_in_the_word2vec_format_gensim_reads(tmp_path):
    from gensim.models import KeyedVectors

    vectors = np.random.default_rng(0).standard_normal((3, 5))
    quality.write_word2vec(tmp_path / "v.txt", ["a", "b", "c"], vectors)
    kv = KeyedVectors.load_word2vec_format(str(tmp_path / "v.txt"))
    assert kv.index_to_key == ["a", "b", "c"]
    np.testing.assert_allclose(kv["b"], vectors[1], rtol=1e-5)


# --- the shared loop ---------------------------------------------------------------------------------

SMALL = {"dim": 16, "epochs": 1, "fraction": 0.3, "seed": 3}


@pytest.mark.parametrize("model", trainers.MODELS)
def test_every_backend_trains_the_same_vectors_through_the_shared_loop(model):
    """Same corpus, seed and batches: backends differ only by their step, so in float64 their vectors agree."""
    path = corpus.gensim_data("lee_background.cor")
    s = trainers.Settings(model=model, **SMALL)
    vocab = corpus.Vocabulary.build(path, s.min_count, s.fraction)
    runs = {b: trainers.train(registry.backend(b), "cpu", "float64", path, s, vocab) for b in BACKENDS}
    reference = runs["numpy"].vectors
    assert np.all(np.isfinite(reference)) and runs["numpy"].words == vocab.total
    for name, run in runs.items():
        np.testing.assert_allclose(run.vectors, reference, rtol=1e-6, atol=1e-9, err_msg=name)


class ItemByItem(NumpyBackend):
    """A plug-in whose steps are the reference's, one item after the other: what a sequential trainer computes."""

    name = "item-by-item"

    def training_steps(self, device, dtype):
        sequential = WrongSteps.item_by_item
        return TrainingSteps(sequential(training.negative_sampling_state_step),
                             sequential(training.glove_state_step), sequential=True)


@pytest.mark.skipif(not SEQUENTIAL, reason="numba is not installed (the [numba] extra)")
@pytest.mark.parametrize("model", trainers.MODELS)
def test_a_sequential_trainer_in_one_thread_trains_the_reference_item_by_item(model):
    """Same corpus, seed and items: numba in one thread trains the vectors the reference gives item by item."""
    path = corpus.gensim_data("lee_background.cor")
    s = trainers.Settings(model=model, dim=8, epochs=1, fraction=0.03, seed=5, threads=1)
    vocab = corpus.Vocabulary.build(path, s.min_count, s.fraction)
    expected = trainers.train(ItemByItem(), "cpu", "float64", path, s, vocab).vectors
    for run in range(2):  # twice: one thread is deterministic
        actual = trainers.train(registry.backend(SEQUENTIAL[0]), "cpu", "float64", path, s, vocab)
        assert actual.words == vocab.total
        np.testing.assert_allclose(actual.vectors, expected, rtol=1e-9, atol=1e-12, err_msg=f"run {run}")


def test_skipgram_learns_more_than_chance_on_a_shipped_corpus():
    path = corpus.gensim_data("lee_background.cor")
    s = trainers.Settings(model="skipgram", dim=50, epochs=3, seed=1)
    run = trainers.train(registry.backend(BACKENDS[-1]), "cpu", "float32", path, s)
    frequent = run.vectors[:50] / np.linalg.norm(run.vectors[:50], axis=1, keepdims=True)
    untrained = np.random.default_rng(0).random(run.vectors.shape) - 0.5
    rest = untrained[:50] / np.linalg.norm(untrained[:50], axis=1, keepdims=True)
    # trained vectors of frequent words share directions (the corpus's topics); random ones do not
    assert np.abs(frequent @ frequent.T).mean() > 2 * np.abs(rest @ rest.T).mean()


# --- seqbench embed ----------------------------------------------------------------------------------

def embed(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "seqbench", "embed", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=600)


def test_embed_trains_writes_vectors_and_reports_quality_beside_gensim(tmp_path):
    from gensim.models import KeyedVectors

    out = tmp_path / "v.txt"
    done = embed("--backend", BACKENDS[-1], "--corpus", "lee_background.cor", "--epochs", "1", "--dim", "20",
                 "--peer", "--out", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "update step: conforms" in done.stdout
    assert "wordsim353 ρ" in done.stdout and "gensim (" in done.stdout and "words/s" in done.stdout
    assert KeyedVectors.load_word2vec_format(str(out)).vector_size == 20


@pytest.mark.parametrize("args, message", [
    (["--corpus", "no-such.txt"], "--corpus must be a text file"),
    (["--dim", "0"], "--dim must be a whole number ≥ 1"),
    (["--batch", "0"], "--batch must be a positive number"),
    (["--lr", "-0.1"], "--lr must be a positive number"),
    (["--threads", "-1"], "--threads must be a whole number ≥ 0"),
    (["--dtype", "float16"], "--dtype must be one of"),
    (["--backend", "nope"], "nope"),
    (["--backend", "torch-native"], "train with --backend torch"),
    (["--model", "glove", "--peer"], "--peer trains gensim's Word2Vec"),
    (["--device", "cuda"], "--device must be one of"),
    (["--model", "cbow"], "the following arguments are required: --backend"),
])
def test_embed_refuses_bad_input_in_one_line(args, message, tmp_path):
    chosen = [] if "--backend" in args or args == ["--model", "cbow"] else ["--backend", "numpy"]
    done = embed(*chosen, *args, "--out", str(tmp_path / "v.txt"))
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert not (tmp_path / "v.txt").exists()


# --- the report's section ------------------------------------------------------------------------------

def _points(machine="m", seeds=(1,), **runs):
    """asv points of bench_training.train for ``runs = {"model-trainer-fraction": {metric: value}}``, each metric
    measured the same on every seed but ρ, which moves by ``0.01·(seed − 1)``."""
    points = []
    for key, metrics in runs.items():
        model, trainer, fraction = key.split("-")
        for seed in seeds:
            for metric, value in metrics.items():
                value += 0.01 * (seed - 1) if metric.startswith("wordsim") and metric != "wordsim_pairs" else 0
                points.append({"machine": machine, "suite": "bench_training.train", "method": f"track_{metric}",
                               "date": 1, "result": value,
                               "params": {"model": model, "trainer": trainer, "device": "cpu",
                                          "fraction": float(fraction), "seed": seed}})
    return points


def test_the_report_shows_speed_against_gensim_and_decides_each_claim():
    from seqbench.reports import training as report

    def run(speed, rho, rare, frequent):
        return {"words_per_second": speed, "wordsim": rho, "wordsim_rare": rare, "wordsim_frequent": frequent,
                "wordsim_pairs": 96, "analogy": 0.01}

    runs = report.summary(report.table(_points(**{
        "skipgram-gensim-1.0": run(400e3, 0.38, 0.31, 0.50), "cbow-gensim-1.0": run(1.2e6, 0.08, -0.05, 0.18),
        "skipgram-jax-1.0": run(100e3, 0.37, 0.30, 0.51), "cbow-jax-1.0": run(300e3, 0.06, -0.08, 0.15),
        "skipgram-jax-0.25": run(100e3, 0.20, 0.1, 0.3), "cbow-jax-0.25": run(300e3, 0.01, 0.0, 0.1),
    })))
    jax_sg = runs[(runs.trainer == "jax") & (runs.model == "skipgram") & (runs.fraction == 1.0)].iloc[0]
    assert jax_sg.vs_gensim == pytest.approx(0.25) and jax_sg.seeds == 1
    assert jax_sg.wordsim_vs_gensim["shows"] == "one seed"
    claims = report.claims(runs).set_index(["trainer", "claim"])["holds here"]
    jax = "jax on cpu (m)"
    assert claims[(jax, "CBOW trains faster")] == "yes"
    assert claims[(jax, "skip-gram is better on rare words")] == "yes"
    assert claims[(jax, "CBOW is better on frequent words")] == "no"
    assert claims[(jax, "skip-gram's lead is largest on a small corpus")] == "no"  # 0.19 at 0.25 < 0.31 at 1
    assert ("gensim on cpu (m)", "skip-gram's lead is largest on a small corpus") not in claims  # one size only
    assert report.blocks(report.summary(report.table([]))) == []
    few = report.summary(report.table(_points(**{"skipgram-numpy-1.0": {**run(1, 0.1, 0.1, 0.1), "wordsim_pairs": 45},
                                                  "cbow-numpy-1.0": {**run(2, 0.1, 0.0, 0.1), "wordsim_pairs": 45}})))
    verdicts = report.claims(few).set_index("claim")["holds here"]
    assert verdicts["CBOW trains faster"] == "yes"
    assert verdicts["skip-gram is better on rare words"].startswith("undecided: 45 pairs")


def test_quality_is_a_mean_over_seeds_compared_with_gensim_within_a_margin():
    from seqbench.reports import training as report

    def run(rho):
        return {"words_per_second": 1e5, "wordsim": rho, "wordsim_rare": rho, "wordsim_frequent": rho,
                "wordsim_pairs": 96, "analogy": 0.01}

    seeds = (1, 2, 3, 4, 5)  # ρ 0.38, 0.39, ... 0.42 for gensim
    runs = report.table(_points(seeds=seeds, **{"skipgram-gensim-1.0": run(0.38), "skipgram-same-1.0": run(0.381),
                                                "skipgram-worse-1.0": run(0.30), "skipgram-near-1.0": run(0.395)}))
    assert len(runs) == 4 * len(seeds)
    rows = report.summary(runs).set_index("trainer")
    assert rows.loc["same", "seeds"] == 5 and rows.loc["same", "wordsim"] == pytest.approx(0.401)
    assert rows.loc["same", "wordsim_sd"] == pytest.approx(np.std([0.0, 0.01, 0.02, 0.03, 0.04], ddof=1))
    same, worse, near = (rows.loc[t, "wordsim_vs_gensim"] for t in ("same", "worse", "near"))
    assert same["shows"] == "equivalent" and same["low"] < 0.001 < same["high"]
    assert worse["shows"] == "worse" and worse["diff"] == pytest.approx(-0.08)
    assert near["shows"] == "inconclusive"  # +0.015 with an interval of about ±0.014: across the margin
    assert report.display(rows.reset_index()).loc[0, "all Δρ vs gensim"] == ""  # gensim against itself: nothing
    # a run from before seeds were an axis is seed 1 of its point, unless the point has seeded runs
    old = [dict(p, params={k: v for k, v in p["params"].items() if k != "seed"}, date=0)
           for p in _points(**{"skipgram-gensim-1.0": run(0.1), "cbow-gensim-1.0": run(0.1)})]
    mixed = report.table(old + _points(seeds=seeds, **{"skipgram-gensim-1.0": run(0.38)}))
    assert sorted(mixed.groupby("model").seed.apply(list).items()) == [("cbow", [1]), ("skipgram", list(seeds))]
