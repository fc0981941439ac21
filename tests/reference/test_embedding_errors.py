"""Bad input to the embedding reference: a ValueError/TypeError whose message starts with the argument's name."""

import re

import numpy as np
import pytest

from seqbench import catalog, reference as R

rng = np.random.default_rng(0)
V, d = 6, 3
E_in, E_out = rng.standard_normal((V, d)), rng.standard_normal((V, d))
CORPUS = np.array([0, 1, 2, 3, 4, 5, 0])
GLOVE = {"X": R.cooccurrence(CORPUS, V, 2).toarray(), "theta": E_in, "e": E_out, "b": np.zeros(V), "b_prime": np.zeros(V)}

CASES = {
    # word ids outside [0, V)
    "ids-above-V": (ValueError, "ids", lambda: R.embedding_lookup(E_in, np.array([0, V]))),
    "ids-negative": (ValueError, "ids", lambda: R.embedding_one_hot(E_in, np.array([-1]))),
    "ids-float": (TypeError, "ids", lambda: R.embedding_lookup(E_in, np.array([0.0]))),
    "w_i-above-V": (ValueError, "w_i", lambda: R.softmax_prob(E_in, E_out, V)),
    "corpus-above-V": (ValueError, "corpus_ids", lambda: R.skipgram_loss(E_in, E_out, np.array([0, V]), 1)),
    "w_neg-negative": (ValueError, "w_neg", lambda: R.negative_sampling_lookup_loss(
        E_in, E_out, np.array([0]), np.array([1]), np.array([[-1]]))),
    "cooccurrence-above-V": (ValueError, "corpus_ids", lambda: R.cooccurrence(CORPUS, V - 1, 2)),
    # negative or non-finite counts
    "counts-negative": (ValueError, "counts", lambda: R.noise_distribution(np.array([1, -1, 2]))),
    "counts-nan": (ValueError, "counts", lambda: R.noise_distribution(np.array([1.0, np.nan]))),
    "counts-inf": (ValueError, "counts", lambda: R.noise_distribution(np.array([1.0, np.inf]))),
    "counts-all-zero": (ValueError, "counts", lambda: R.noise_distribution(np.zeros(3))),
    "counts-text": (TypeError, "counts", lambda: R.noise_distribution(np.array(["a", "b"]))),
    "power-zero": (ValueError, "power", lambda: R.noise_distribution(np.ones(3), power=0)),
    "X-negative": (ValueError, "X", lambda: R.glove_cost(**{**GLOVE, "X": -GLOVE["X"]})),
    "X-nan": (ValueError, "X", lambda: R.glove_cost(**{**GLOVE, "X": GLOVE["X"] * np.nan})),
    # mismatched d between matrices
    "E_out-d": (ValueError, "E_out", lambda: R.softmax_prob(E_in, E_out[:, :2], 0)),
    "E_out-V": (ValueError, "E_out", lambda: R.cbow_loss(E_in, E_out[:4], CORPUS[:3], 1)),
    "e_o-d": (ValueError, "e_o", lambda: R.negative_sampling_loss(E_in, E_out[:, :2], E_out[:, None])),
    "e_neg-d": (ValueError, "e_neg", lambda: R.negative_sampling_loss(E_in, E_out, E_out[:, None, :2])),
    "glove-e-d": (ValueError, "e", lambda: R.glove_cost(**{**GLOVE, "e": E_out[:, :2]})),
    "glove_embedding-d": (ValueError, "e", lambda: R.glove_embedding(E_out[:, :2], E_in)),
    # K = 0 negatives
    "e_neg-K0": (ValueError, "e_neg", lambda: R.negative_sampling_loss(E_in, E_out, E_out[:, None][:, :0])),
    "w_neg-K0": (ValueError, "w_neg", lambda: R.negative_sampling_lookup_loss(
        E_in, None, np.array([0]), np.array([1]), np.zeros((1, 0), dtype=int))),
    "shape-K0": (ValueError, "shape", lambda: R.sample_negatives(np.full(V, 1 / V), (4, 0), np.random.default_rng())),
    # empty corpus
    "corpus-empty": (ValueError, "corpus_ids", lambda: R.skipgram_loss(E_in, E_out, np.array([], dtype=int), 1)),
    "corpus-one-word": (ValueError, "corpus_ids", lambda: R.cbow_loss(E_in, E_out, np.array([0]), 1)),
    "cooccurrence-empty": (ValueError, "corpus_ids", lambda: R.cooccurrence(np.array([], dtype=int), V, 2)),
    # window < 1
    "c-zero": (ValueError, "c", lambda: R.skipgram_loss(E_in, E_out, CORPUS, 0)),
    "c-float": (TypeError, "c", lambda: R.cbow_pairwise_loss(E_in, E_out, CORPUS, 1.5)),
    "window-zero": (ValueError, "window", lambda: R.cooccurrence(CORPUS, V, 0)),
    # the rest of the boundary
    "vocab_size-zero": (ValueError, "vocab_size", lambda: R.cooccurrence(CORPUS, 0, 2)),
    "dist-not-normalized": (ValueError, "dist", lambda: R.sample_negatives(np.ones(V), 3, np.random.default_rng())),
    "rng-seed": (TypeError, "rng", lambda: R.sample_negatives(np.full(V, 1 / V), 3, 0)),
    "x_max-zero": (ValueError, "x_max", lambda: R.glove_cost(**GLOVE, x_max=0)),
    "alpha-negative": (ValueError, "alpha", lambda: R.glove_cost(**GLOVE, alpha=-0.75)),
    "cotangents-shape": (ValueError, "cotangents", lambda: R.vjp("embedding_lookup", (np.ones(d),), E=E_in, ids=np.array([0, 1]))),
}


@pytest.mark.parametrize("name", CASES)
def test_bad_input_names_the_argument(name):
    error, argument, call = CASES[name]
    with pytest.raises(error) as raised:
        call()
    assert re.match(rf"{re.escape(argument)}\b", str(raised.value)), f"the message does not start with {argument!r}: {raised.value}"


EMBEDDING_OPS = [op for op in catalog.ops().values() if op.family == "embedding"]


@pytest.mark.parametrize("op", EMBEDDING_OPS, ids=lambda op: op.name)
def test_catalog_bad_inputs_are_rejected_by_check_and_forward_alike(op):
    """``reference.check`` (what backends call first) raises exactly what the function itself raises."""
    for what, bad in op.bad_inputs(op.inputs(op.shapes[0])).items():
        with pytest.raises((TypeError, ValueError)) as checked:
            R.check(op.function, **bad)
        with pytest.raises((TypeError, ValueError)) as ran:
            op.reference(**bad)
        assert (type(checked.value), str(checked.value)) == (type(ran.value), str(ran.value)), what
        assert re.match(rf"{what.split('-')[0]}\b", str(checked.value)), f"{what}: {checked.value}"
