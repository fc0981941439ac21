"""The embedding reference on hand-computed cases; gradients of the catalog ops are in tests/reference/test_gradients.py."""

import numpy as np
import pytest
import scipy.sparse

import seqbench
from seqbench import catalog, reference as R
from seqbench.precision.gradcheck import max_difference, numerical_vjp

EMBEDDING_OPS = [name for name, op in catalog.ops().items() if op.family == "embedding"]


def _sigma(x):
    return 1 / (1 + np.exp(-x))


def test_one_hot_product_equals_row_lookup():
    rng = np.random.default_rng(0)
    E = rng.standard_normal((7, 3))
    ids = np.array([[0, 6], [3, 3]])
    np.testing.assert_array_equal(R.one_hot([2, 0], 3), [[0, 0, 1], [1, 0, 0]])
    np.testing.assert_array_equal(R.embedding_lookup(E, ids), E[ids])
    np.testing.assert_array_equal(R.embedding_one_hot(E, ids), R.embedding_lookup(E, ids))
    cot = (rng.standard_normal((2, 2, 3)),)
    np.testing.assert_allclose(R.vjp("embedding_one_hot", cot, E=E, ids=ids)["E"],
                               R.vjp("embedding_lookup", cot, E=E, ids=ids)["E"], rtol=0, atol=1e-15)


def test_softmax_prob_hand_case():
    E_in, E_out = np.array([[1.0], [0.0]]), np.array([[1.0], [2.0]])
    # logits e_w·e_{w_i} for w_i = 0: [1, 2]
    np.testing.assert_allclose(R.softmax_prob(E_in, E_out, 0), [1 / (1 + np.e), np.e / (1 + np.e)], rtol=1e-15)
    # tied: E_out = E_in, logits for w_i = 0: [1, 0]
    np.testing.assert_allclose(R.softmax_prob(E_in, None, np.array([0])), [[np.e / (1 + np.e), 1 / (1 + np.e)]])


def test_softmax_prob_sums_to_one_and_is_stable():
    rng = np.random.default_rng(1)
    E_in, E_out = rng.standard_normal((50, 8)), rng.standard_normal((50, 8))
    w_i = np.arange(50)
    p = R.softmax_prob(E_in, E_out, w_i)
    np.testing.assert_allclose(p.sum(axis=-1), 1, rtol=1e-14)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        huge = R.softmax_prob(1e3 * E_in, 1e3 * E_out, w_i)  # logits ~1e6
    assert np.all(np.isfinite(huge))
    np.testing.assert_allclose(huge.sum(axis=-1), 1, rtol=1e-14)
    np.testing.assert_array_equal(huge.argmax(-1), p.argmax(-1))


def test_skipgram_hand_case():
    E_in, E_out = np.array([[1.0], [2.0]]), np.array([[0.0], [1.0]])
    # pairs (t, t+j) of the corpus [0, 1] with c = 1: (0, 1) and (1, 0)
    log_p_1_given_0 = np.log(np.e / (1 + np.e))  # logits [0, 1]
    log_p_0_given_1 = np.log(1 / (1 + np.e**2))  # logits [0, 2]
    expected = -(log_p_1_given_0 + log_p_0_given_1) / 2
    np.testing.assert_allclose(R.skipgram_loss(E_in, E_out, np.array([0, 1]), 1), expected, rtol=1e-15)
    # a window wider than the corpus only sees the pairs inside it
    np.testing.assert_allclose(R.skipgram_loss(E_in, E_out, np.array([0, 1]), 5), expected, rtol=1e-15)


def test_notes_cbow_as_written_equals_skipgram():
    """Σ_t Σ_j log p(w_t|w_{t+j}) relabelled u = t+j is Σ_u Σ_j log p(w_{u-j}|w_u): the skip-gram sum."""
    op = catalog.get("skipgram_loss")
    for shape in op.shapes:
        inputs = op.inputs(shape, seed=2)
        np.testing.assert_allclose(R.cbow_pairwise_loss(**inputs), R.skipgram_loss(**inputs), rtol=1e-13)


def test_cbow_hand_case():
    E_in, E_out = np.array([[1.0], [2.0], [-1.0]]), np.array([[0.5], [-1.0], [2.0]])
    corpus = np.array([0, 1, 2])
    h = np.array([2.0, (1.0 - 1.0) / 2, 2.0])  # mean context vectors: e_1, (e_0 + e_2)/2, e_1
    logits = h[:, None] * E_out[:, 0]  # (T, V)
    log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    expected = -log_p[np.arange(3), corpus].sum() / 3
    np.testing.assert_allclose(R.cbow_loss(E_in, E_out, corpus, 1), expected, rtol=1e-15)


def test_cbow_mean_equals_pairwise_when_every_context_is_one_word():
    rng = np.random.default_rng(3)
    E_in, E_out = rng.standard_normal((5, 4)), rng.standard_normal((5, 4))
    corpus = np.array([3, 1])  # T = 2, c = 1: each word's context is the other word alone
    np.testing.assert_allclose(R.cbow_loss(E_in, E_out, corpus, 1), R.cbow_pairwise_loss(E_in, E_out, corpus, 1))


@pytest.mark.parametrize("name", ["softmax_prob", "skipgram_loss", "cbow_loss", "negative_sampling_lookup_loss"])
def test_tied_matrices_are_one_matrix_used_twice(name):
    op = catalog.get(name)
    inputs = op.inputs(op.shapes[0], seed=4)
    tied, twice = {**inputs, "E_out": None}, {**inputs, "E_out": inputs["E_in"]}
    np.testing.assert_allclose(op.reference(**tied)[0], op.reference(**twice)[0], rtol=1e-14)
    cot = op.cotangents(op.reference(**tied))
    grads = R.vjp(op.function, cot, **twice)
    assert set(R.vjp(op.function, cot, **tied)) == {"E_in"}
    np.testing.assert_allclose(R.vjp(op.function, cot, **tied)["E_in"], grads["E_in"] + grads["E_out"], atol=1e-14)


def test_negative_sampling_hand_case_and_sign():
    e_i, e_o, e_neg = np.array([[1.0]]), np.array([[2.0]]), np.array([[[3.0]]])
    expected = -np.log(_sigma(2.0)) - np.log(_sigma(-3.0))
    np.testing.assert_allclose(R.negative_sampling_loss(e_i, e_o, e_neg), expected, rtol=1e-15)
    # the correct sign: a noise word moving away from e_i lowers the loss (the notes' +Σ would raise it)
    assert R.negative_sampling_loss(e_i, e_o, -e_neg) < R.negative_sampling_loss(e_i, e_o, e_neg)


@pytest.mark.parametrize("x", [1000.0, -1000.0])
def test_negative_sampling_is_stable_at_1000(x):
    e_i, e_o, e_neg = np.array([[1.0]]), np.array([[x]]), np.array([[[x]]])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        loss = R.negative_sampling_loss(e_i, e_o, e_neg)
        grads = R.vjp("negative_sampling_loss", 1.0, e_i=e_i, e_o=e_o, e_neg=e_neg)
    # -log σ(x) - log σ(-x) = |x| + 2 log(1 + e^{-|x|}) = 1000 (to within e^{-1000})
    np.testing.assert_allclose(loss, 1000.0, rtol=1e-15)
    assert all(np.all(np.isfinite(g)) for g in grads.values())
    np.testing.assert_allclose(R.log_sigmoid(np.array([x])), [min(x, 0.0)], rtol=1e-15)


def test_negative_sampling_lookup_gathers_rows():
    op = catalog.get("negative_sampling_lookup_loss")
    a = op.inputs(op.shapes[0], seed=5)
    gathered = R.negative_sampling_loss(a["E_in"][a["w_i"]], a["E_out"][a["w_o"]], a["E_out"][a["w_neg"]])
    np.testing.assert_array_equal(R.negative_sampling_lookup_loss(**a), gathered)


def test_noise_distribution_hand_case():
    np.testing.assert_allclose(R.noise_distribution(np.array([1, 16, 0, 81])), np.array([1, 8, 0, 27]) / 36, rtol=1e-15)
    np.testing.assert_allclose(R.noise_distribution(np.array([1.0, 3.0]), power=1.0), [0.25, 0.75], rtol=1e-15)


def test_sample_negatives_is_seeded_and_never_draws_zero_probability_words():
    dist = np.array([0.5, 0.0, 0.25, 0.25, 0.0])
    a = R.sample_negatives(dist, (200, 5), np.random.default_rng(6))
    b = R.sample_negatives(dist, (200, 5), np.random.default_rng(6))
    assert a.shape == (200, 5) and np.issubdtype(a.dtype, np.integer)
    np.testing.assert_array_equal(a, b)
    assert set(np.unique(a)) == {0, 2, 3}


def test_cooccurrence_hand_case_distance_weighted_and_symmetric():
    corpus = np.array([0, 1, 2, 0])
    # window 2: positions (0,1) d=1 -> X01 += 1, (0,2) d=2 -> X02 += 1/2, (1,2) d=1 -> X12 += 1,
    # (1,3) d=2 -> X10 += 1/2, (2,3) d=1 -> X20 += 1; each counted both ways
    expected = np.array([[0, 1.5, 1.5], [1.5, 0, 1], [1.5, 1, 0]])
    X = R.cooccurrence(corpus, 3, 2)
    assert isinstance(X, scipy.sparse.coo_array) and X.has_canonical_format
    np.testing.assert_allclose(X.toarray(), expected, rtol=1e-15)
    assert np.all(X.data > 0) and list(zip(X.row, X.col)) == sorted(zip(X.row, X.col))
    # window 3 adds (0,3) d=3: the word 0 with itself, 1/3 each way
    np.testing.assert_allclose(R.cooccurrence(corpus, 3, 3).toarray(), expected + np.diag([2 / 3, 0, 0]), rtol=1e-15)
    big = R.cooccurrence(np.random.default_rng(7).integers(0, 30, 500), 30, 5).toarray()
    np.testing.assert_array_equal(big, big.T)


def test_glove_weighting():
    x = np.array([0.0, 50.0, 100.0, 400.0])
    np.testing.assert_allclose(R.weighting(x), [0, 0.5**0.75, 1, 1], rtol=1e-15)


def _glove_case():
    X = np.array([[0.0, np.e], [1.0, 0.0]])
    return {"X": X, "theta": np.array([[1.0], [2.0]]), "e": np.array([[3.0], [4.0]]),
            "b": np.array([0.5, -0.5]), "b_prime": np.array([0.0, 1.0])}


def test_glove_cost_hand_case_skips_zeros():
    a = _glove_case()
    r01 = 1 * 4 + 0.5 + 1.0 - 1.0  # θ_0·e_1 + b_0 + b'_1 - log e
    r10 = 2 * 3 - 0.5 + 0.0 - 0.0  # θ_1·e_0 + b_1 + b'_0 - log 1
    f = (np.e / 100) ** 0.75, (1 / 100) ** 0.75
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # log 0 would raise
        cost = R.glove_cost(**a)
        grads = R.vjp("glove_cost", 1.0, **a)
    np.testing.assert_allclose(cost, 0.5 * (f[0] * r01**2 + f[1] * r10**2), rtol=1e-15)
    assert set(grads) == {"theta", "e", "b", "b_prime"}
    np.testing.assert_allclose(R.glove_cost(**{**a, "X": scipy.sparse.csr_array(a["X"])}), cost, rtol=1e-15)


def test_glove_gradients_on_both_sides_of_x_max_and_with_sparse_x():
    op = catalog.get("glove_cost")
    a = op.inputs(op.shapes[0], seed=8)
    a["x_max"] = float(np.median(a["X"][a["X"] > 0]))  # half the entries have f = 1
    for X in (a["X"], scipy.sparse.coo_array(a["X"])):
        inputs = {**a, "X": X}
        analytic = R.vjp("glove_cost", 1.0, **inputs)
        worst, where = max_difference(analytic, numerical_vjp(R.glove_cost, (1.0,), inputs, analytic))
        assert worst < 1e-7, f"gradient of {where} differs from finite differences by {worst:.2e}"


def test_glove_embedding():
    np.testing.assert_array_equal(R.glove_embedding(np.array([[1.0, 2.0]]), np.array([[3.0, 0.0]])), [[2.0, 1.0]])


@pytest.mark.parametrize("name", EMBEDDING_OPS)
def test_numpy_backend_runs_in_float32(name):
    op = catalog.get(name)
    inputs = op.inputs(op.shapes[0])
    backend = seqbench.backend("numpy")
    outputs = backend.run(name, dtype="float32", **inputs)
    assert all(o.dtype == np.float32 and o.shape == s for o, s in zip(outputs, op.output_shapes(inputs)))
    grads = backend.vjp(name, op.cotangents(op.reference(**inputs)), dtype="float32", **inputs)
    assert grads and all(g.dtype == np.float32 for g in grads.values())
    assert set(grads) == set(op.reference_vjp(op.cotangents(op.reference(**inputs)), **inputs))
