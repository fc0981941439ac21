"""Catalog entries of the word-embedding ops: lookup, full softmax, word2vec losses, GloVe cost.

Shape keys: ``V`` vocabulary, ``d`` embedding size, ``B`` batch (ids or
pairs), ``K`` negatives per pair, ``N`` corpus length (the notes' ``T``),
``c`` window half-width; ``tied`` passes ``E_out=None``. Matrices are
``(V, d)`` with rows as words (:mod:`seqbench.reference.embedding`).
"""

from __future__ import annotations

import numpy as np

from seqbench.catalog import Op, register
from seqbench.reference.glove import cooccurrence
from seqbench.reference.word2vec import noise_distribution


def _matrix(s, rng):
    """Rows ``~ N(0, 1/d)``, so dot products of two rows are ``O(1)``."""
    return rng.standard_normal((s["V"], s["d"])) / np.sqrt(s["d"])


def _matrices(s, rng):
    E_in = _matrix(s, rng)
    return {"E_in": E_in, "E_out": None if s.get("tied") else _matrix(s, rng)}


def _zipf(s, rng, size):
    """Word ids drawn with Zipf frequencies ``∝ 1/rank``, as in text."""
    return rng.choice(s["V"], size=size, p=noise_distribution(1 / np.arange(1, s["V"] + 1), power=1.0))


def _with(inputs, **changes):
    return {**inputs, **changes}


def _bad_ids(inputs, name):
    """Word ids out of ``[0, V)`` both ways, and float ids."""
    ids, V = inputs[name], len(inputs["E_in"] if "E_in" in inputs else inputs["E"])
    return {
        f"{name}-above-V": _with(inputs, **{name: np.where(ids == ids.flat[0], V, ids)}),
        f"{name}-negative": _with(inputs, **{name: np.where(ids == ids.flat[0], -1, ids)}),
        f"{name}-float": _with(inputs, **{name: ids.astype(float)}),
    }


def _bad_matrices(inputs):
    E_in = inputs["E_in"]
    bad = {
        "E_in-integer": _with(inputs, E_in=E_in.astype(np.int64)),
        "E_in-nan": _with(inputs, E_in=np.where(np.arange(E_in.shape[1]) == 0, np.nan, E_in)),
    }
    if inputs["E_out"] is not None:
        bad["E_out-d-mismatch"] = _with(inputs, E_out=inputs["E_out"][:, :-1])
    return bad


def _bad_corpus(inputs):
    return {
        **_bad_matrices(inputs),
        **_bad_ids(inputs, "corpus_ids"),
        "corpus_ids-empty": _with(inputs, corpus_ids=inputs["corpus_ids"][:0]),
        "c-zero": _with(inputs, c=0),
        "c-float": _with(inputs, c=2.0),
    }


def _loss(name, doc, make_inputs, shapes, large_shapes, flops, nbytes, fan_in, steps, tokens, bad_inputs):
    register(Op(
        name=name, function=name, outputs=("loss",), make_inputs=make_inputs,
        shapes=shapes, large_shapes=large_shapes, flops=flops, bytes=nbytes,
        fan_in=fan_in, steps=steps, tokens=tokens, output_shapes=lambda inputs: ((),),
        family="embedding", bad_inputs=bad_inputs, doc=doc,
    ))


# --- e_w = E o_w: row lookup and the one-hot product ---------------------------------

def _lookup_inputs(s, rng):
    return {"E": _matrix(s, rng), "ids": rng.integers(0, s["V"], s["B"])}


def _bad_lookup(inputs):
    return {
        **_bad_ids(inputs, "ids"),
        "E-not-2d": _with(inputs, E=inputs["E"][0]),
        "E-nan": _with(inputs, E=np.full_like(inputs["E"], np.nan)),
    }


_LOOKUP_SHAPES = ({"V": 50, "d": 8, "B": 16}, {"V": 1000, "d": 64, "B": 256})
for _name, _flops, _bytes, _doc in (
    ("embedding_lookup", lambda s: 0.0, lambda s, itemsize: itemsize * 2 * s["B"] * s["d"] + 8 * s["B"],
     "e_w = E[w]: row lookup"),
    ("embedding_one_hot", lambda s: 2.0 * s["B"] * s["V"] * s["d"],
     lambda s, itemsize: itemsize * (s["V"] * s["d"] + s["B"] * s["d"]) + 8 * s["B"],
     "e_w = E o_w: the one-hot matmul (equals the lookup)"),
):
    register(Op(
        name=_name, function=_name, outputs=("e",), make_inputs=_lookup_inputs,
        shapes=_LOOKUP_SHAPES, large_shapes=({"V": 50000, "d": 128, "B": 4096},),
        flops=_flops, bytes=_bytes,
        fan_in=lambda s: 1, steps=lambda s: 1, tokens=lambda s: s["B"],
        output_shapes=lambda inputs: (np.shape(inputs["ids"]) + (np.shape(inputs["E"])[1],),),
        family="embedding", bad_inputs=_bad_lookup, doc=_doc,
    ))


# --- p(w_o|w_i): the full softmax ------------------------------------------------------

def _softmax_inputs(s, rng):
    return {**_matrices(s, rng), "w_i": rng.integers(0, s["V"], s["B"])}


register(Op(
    name="softmax_prob", function="softmax_prob", outputs=("p",), make_inputs=_softmax_inputs,
    shapes=({"V": 50, "d": 8, "B": 16}, {"V": 50, "d": 8, "B": 16, "tied": True}, {"V": 1000, "d": 64, "B": 128}),
    large_shapes=({"V": 10000, "d": 128, "B": 256},),
    flops=lambda s: 2.0 * s["B"] * s["V"] * s["d"] + 5.0 * s["B"] * s["V"],
    bytes=lambda s, itemsize: itemsize * (2 * s["V"] * s["d"] + s["B"] * s["V"]) + 8 * s["B"],
    # the chain z, z - max, exp, p, then up to B scatter-adds into a row of dE_in
    fan_in=lambda s: s["d"] + s["V"] + s["B"], steps=lambda s: 4 + s["B"], tokens=lambda s: s["B"],
    output_shapes=lambda inputs: (np.shape(inputs["w_i"]) + (np.shape(inputs["E_in"])[0],),),
    family="embedding", bad_inputs=lambda inputs: {**_bad_matrices(inputs), **_bad_ids(inputs, "w_i")},
    doc="p(w_o|w_i) = softmax over the vocabulary of e_w·e_{w_i}",
))


# --- skip-gram and CBOW over a corpus ----------------------------------------------------

def _corpus_inputs(s, rng):
    return {**_matrices(s, rng), "corpus_ids": _zipf(s, rng, s["N"]), "c": s["c"]}


_CORPUS_SHAPES = (
    {"V": 50, "d": 8, "N": 40, "c": 2},
    {"V": 50, "d": 8, "N": 40, "c": 2, "tied": True},
    {"V": 500, "d": 32, "N": 256, "c": 5},
)
_CORPUS_LARGE = ({"V": 5000, "d": 128, "N": 1024, "c": 5},)


def _pairs(s):
    """Context pairs inside a corpus of ``N`` words: ``2cN - c(c+1)``."""
    c = min(s["c"], s["N"] - 1)
    return 2 * c * s["N"] - c * (c + 1)


def _corpus_bytes(s, itemsize):
    return itemsize * (2 * s["V"] * s["d"] + s["N"] * s["V"]) + 8 * s["N"]


for _name, _doc in (
    ("skipgram_loss", "skip-gram: -(1/T) Σ_t Σ_j log p(w_{t+j}|w_t)"),
    ("cbow_pairwise_loss", "CBOW as the notes write it: -(1/T) Σ_t Σ_j log p(w_t|w_{t+j}) (equals skip-gram)"),
):
    _loss(
        _name, _doc, _corpus_inputs, _CORPUS_SHAPES, _CORPUS_LARGE,
        flops=lambda s: 2.0 * s["N"] * s["V"] * s["d"] + 5.0 * s["N"] * s["V"] + _pairs(s),
        nbytes=_corpus_bytes, fan_in=lambda s: s["d"] + s["V"], steps=_pairs, tokens=lambda s: s["N"],
        bad_inputs=_bad_corpus,
    )

_loss(
    "cbow_loss", "word2vec's CBOW: -(1/T) Σ_t log p(w_t | mean of the context vectors)",
    _corpus_inputs, _CORPUS_SHAPES, _CORPUS_LARGE,
    flops=lambda s: 2.0 * s["N"] * s["V"] * s["d"] + 5.0 * s["N"] * s["V"] + _pairs(s) * s["d"],
    nbytes=_corpus_bytes, fan_in=lambda s: s["d"] + s["V"] + 2 * s["c"], steps=lambda s: s["N"],
    tokens=lambda s: s["N"], bad_inputs=_bad_corpus,
)


# --- negative sampling -------------------------------------------------------------------

def _negative_inputs(s, rng):
    def rows(*lead):
        return rng.standard_normal(lead + (s["d"],)) / np.sqrt(s["d"])

    return {"e_i": rows(s["B"]), "e_o": rows(s["B"]), "e_neg": rows(s["B"], s["K"])}


def _bad_negative(inputs):
    return {
        "e_neg-K0": _with(inputs, e_neg=inputs["e_neg"][:, :0]),
        "e_o-d-mismatch": _with(inputs, e_o=inputs["e_o"][:, :-1]),
        "e_neg-d-mismatch": _with(inputs, e_neg=inputs["e_neg"][..., :-1]),
        "e_i-nan": _with(inputs, e_i=np.full_like(inputs["e_i"], np.nan)),
        "e_i-integer": _with(inputs, e_i=inputs["e_i"].astype(np.int64)),
    }


def _negative_flops(s):
    return 2.0 * s["B"] * (s["K"] + 1) * s["d"] + 4.0 * s["B"] * (s["K"] + 1)


_loss(
    "negative_sampling_loss", "-Σ log σ(e_o·e_i) - Σ Σ log σ(-e_w·e_i) over B pairs and K negatives each",
    _negative_inputs, ({"B": 16, "K": 5, "d": 8}, {"B": 256, "K": 15, "d": 64}), ({"B": 4096, "K": 15, "d": 300},),
    flops=_negative_flops,
    nbytes=lambda s, itemsize: itemsize * s["B"] * (s["K"] + 2) * s["d"],
    fan_in=lambda s: s["d"], steps=lambda s: s["B"] * (s["K"] + 1), tokens=lambda s: s["B"],
    bad_inputs=_bad_negative,
)


def _negative_lookup_inputs(s, rng):
    noise = noise_distribution(np.bincount(_zipf(s, rng, 20 * s["V"]), minlength=s["V"]))
    return {
        **_matrices(s, rng),
        "w_i": rng.integers(0, s["V"], s["B"]),
        "w_o": rng.integers(0, s["V"], s["B"]),
        "w_neg": rng.choice(s["V"], size=(s["B"], s["K"]), p=noise),
    }


def _bad_negative_lookup(inputs):
    return {
        **_bad_matrices(inputs),
        **_bad_ids(inputs, "w_o"),
        "w_neg-K0": _with(inputs, w_neg=inputs["w_neg"][:, :0]),
        "w_neg-negative": _with(inputs, w_neg=-1 - inputs["w_neg"]),
    }


_loss(
    "negative_sampling_lookup_loss", "negative sampling on word ids: e_i = E_in[w_i], e_o = E_out[w_o], e_w = E_out[w_neg]",
    _negative_lookup_inputs,
    ({"V": 50, "d": 8, "B": 16, "K": 5}, {"V": 50, "d": 8, "B": 16, "K": 5, "tied": True},
     {"V": 1000, "d": 64, "B": 256, "K": 15}),
    ({"V": 50000, "d": 128, "B": 4096, "K": 15},),
    flops=_negative_flops,
    nbytes=lambda s, itemsize: itemsize * s["B"] * (s["K"] + 2) * s["d"] + 8 * s["B"] * (s["K"] + 2),
    fan_in=lambda s: s["d"], steps=lambda s: s["B"] * (s["K"] + 1), tokens=lambda s: s["B"],
    bad_inputs=_bad_negative_lookup,
)


def _cbow_negative_inputs(s, rng):
    """Windows of 1 to ``M`` context words (``-1`` pads the rest), as word2vec's dynamic window makes them."""
    inputs = _negative_lookup_inputs(s, rng)
    w_ctx = rng.integers(0, s["V"], (s["B"], s["M"]))
    w_ctx[np.arange(s["M"]) >= rng.integers(1, s["M"] + 1, (s["B"], 1))] = -1
    return {"E_in": inputs["E_in"], "E_out": inputs["E_out"], "w_ctx": w_ctx,
            "w_o": inputs["w_o"], "w_neg": inputs["w_neg"]}


def _bad_cbow_negative(inputs):
    w_ctx = inputs["w_ctx"]
    return {
        **_bad_matrices(inputs),
        **_bad_ids(inputs, "w_o"),
        "w_ctx-empty-row": _with(inputs, w_ctx=np.where(np.arange(len(w_ctx))[:, None] == 0, -1, w_ctx)),
        "w_ctx-below-minus-1": _with(inputs, w_ctx=np.where(w_ctx == w_ctx.flat[0], -2, w_ctx)),
        "w_ctx-1d": _with(inputs, w_ctx=w_ctx[:, 0]),
    }


_loss(
    "cbow_negative_sampling_loss",
    "word2vec's CBOW with negative sampling: e_i = mean of the context rows of E_in (M = 1: skip-gram's pairs)",
    _cbow_negative_inputs,
    ({"V": 50, "d": 8, "B": 16, "M": 4, "K": 5}, {"V": 1000, "d": 64, "B": 256, "M": 10, "K": 5}),
    ({"V": 50000, "d": 128, "B": 4096, "M": 10, "K": 5},),
    flops=lambda s: _negative_flops(s) + 2.0 * s["B"] * s["M"] * s["d"],
    nbytes=lambda s, itemsize: itemsize * s["B"] * (s["K"] + s["M"] + 1) * s["d"] + 8 * s["B"] * (s["K"] + s["M"] + 1),
    fan_in=lambda s: s["d"] + s["M"], steps=lambda s: s["B"] * (s["K"] + 1), tokens=lambda s: s["B"],
    bad_inputs=_bad_cbow_negative,
)


# --- GloVe ----------------------------------------------------------------------------------

def _glove_inputs(s, rng):
    """A dense ``X`` counted from a Zipf corpus (frequent pairs pass ``x_max`` at large ``N``), small parameters."""
    X = cooccurrence(_zipf(s, rng, s["N"]), s["V"], s["c"]).toarray()

    def small(*shape):
        return 0.1 * rng.standard_normal(shape)

    return {"X": X, "theta": small(s["V"], s["d"]), "e": small(s["V"], s["d"]), "b": small(s["V"]), "b_prime": small(s["V"])}


def _bad_glove(inputs):
    X = inputs["X"]
    return {
        "X-negative": _with(inputs, X=np.where(X == X.max(), -1.0, X)),
        "X-shape": _with(inputs, X=X[:-1]),
        "X-nan": _with(inputs, X=np.where(X == X.max(), np.nan, X)),
        "e-d-mismatch": _with(inputs, e=inputs["e"][:, :-1]),
        "b_prime-shape": _with(inputs, b_prime=inputs["b_prime"][:-1]),
        "x_max-zero": _with(inputs, x_max=0.0),
    }


def _entries(s):
    """An upper bound on the nonzero ``X_ij``: ``min(V², pairs)``."""
    return min(s["V"] ** 2, _pairs(s))


_loss(
    "glove_cost", "GloVe: J = ½ Σ f(X_ij)(θ_i·e_j + b_i + b'_j - log X_ij)² over nonzero X_ij",
    _glove_inputs, ({"V": 20, "d": 4, "N": 50, "c": 2}, {"V": 200, "d": 32, "N": 5000, "c": 5}),
    ({"V": 2000, "d": 100, "N": 200000, "c": 10},),
    flops=lambda s: (2.0 * s["d"] + 10) * _entries(s),
    nbytes=lambda s, itemsize: itemsize * (s["V"] ** 2 + 2 * s["V"] * (s["d"] + 1)),
    fan_in=lambda s: s["d"], steps=_entries, tokens=_entries,
    bad_inputs=_bad_glove,
)
