"""The reference's forward passes against small cases computed by hand."""

import numpy as np
import pytest

from seqbench import catalog, reference
from seqbench.reference import sigmoid


def scalar_params(names, values):
    return {k: np.array([[v]]) if k.startswith("W") else np.array([v]) for k, v in zip(names, values)}


def test_rnn_by_hand():
    # H = I = 1: h_t = tanh(w_h h_{t-1} + w_x x_t + b)
    p = scalar_params(["W_h", "W_x", "b"], [0.5, -1.0, 0.1])
    x = np.array([1.0, 2.0, -0.5]).reshape(3, 1, 1)
    h, expected = 0.2, []
    for xt in (1.0, 2.0, -0.5):
        h = np.tanh(0.5 * h - 1.0 * xt + 0.1)
        expected.append(h)
    y, h_T = reference.rnn(x, p, h0=np.array([[0.2]]))
    np.testing.assert_allclose(y[:, 0, 0], expected, rtol=1e-15)
    np.testing.assert_allclose(h_T[0, 0], expected[-1], rtol=1e-15)


def test_lstm_by_hand():
    names = ["W_fh", "W_fx", "b_f", "W_ih", "W_ix", "b_i", "W_oh", "W_ox", "b_o", "W_Ch", "W_Cx", "b_C"]
    values = [0.1, 0.2, 0.3, -0.1, 0.4, 0.0, 0.5, -0.3, 0.1, 0.7, 0.9, -0.2]
    p = scalar_params(names, values)
    x = np.array([0.5, -1.5]).reshape(2, 1, 1)
    h, C = 0.1, -0.3
    for xt in (0.5, -1.5):
        f = sigmoid(np.array(0.1 * h + 0.2 * xt + 0.3))
        i = sigmoid(np.array(-0.1 * h + 0.4 * xt + 0.0))
        o = sigmoid(np.array(0.5 * h - 0.3 * xt + 0.1))
        C_tilde = np.tanh(0.7 * h + 0.9 * xt - 0.2)
        C = f * C + i * C_tilde
        h = o * np.tanh(C)
    _, h_T, C_T = reference.lstm(x, p, h0=np.array([[0.1]]), c0=np.array([[-0.3]]))
    np.testing.assert_allclose([h_T[0, 0], C_T[0, 0]], [h, C], rtol=1e-14)


def test_gru_variants_by_hand():
    x = np.array([0.7]).reshape(1, 1, 1)
    h0 = np.array([[0.4]])
    notes = scalar_params(["W_zh", "W_zx", "W_rh", "W_rx", "W_hh", "W_hx"], [0.3, -0.2, 0.6, 0.1, 0.8, 0.5])
    z = sigmoid(np.array(0.3 * 0.4 - 0.2 * 0.7))
    r = sigmoid(np.array(0.6 * 0.4 + 0.1 * 0.7))
    h_tilde = np.tanh(0.8 * (r * 0.4) + 0.5 * 0.7)
    _, h = reference.gru(x, notes, h0=h0)
    np.testing.assert_allclose(h[0, 0], (1 - z) * 0.4 + z * h_tilde, rtol=1e-14)

    biases = {f"b_{g}{s}": np.array([0.05 * k]) for k, (g, s) in enumerate([(g, s) for g in "zrh" for s in "xh"], 1)}
    after = {**notes, **biases}
    z = sigmoid(np.array(-0.2 * 0.7 + 0.05 + 0.3 * 0.4 + 0.10))
    r = sigmoid(np.array(0.1 * 0.7 + 0.15 + 0.6 * 0.4 + 0.20))
    h_tilde = np.tanh(0.5 * 0.7 + 0.25 + r * (0.8 * 0.4 + 0.30))
    _, h = reference.gru(x, after, h0=h0, variant="reset_after")
    np.testing.assert_allclose(h[0, 0], (1 - z) * 0.4 + z * h_tilde, rtol=1e-14)


def test_gru_variants_differ():
    op = catalog.get("gru_reset_after")
    inputs = op.inputs({"T": 4, "B": 2, "I": 3, "H": 5})
    zero_bias = {k: (0 * v if k.startswith("b_") else v) for k, v in inputs["params"].items()}
    notes = {k: v for k, v in zero_bias.items() if k.startswith("W_")}
    y_notes, _ = reference.gru(inputs["x"], notes, inputs["h0"])
    y_after, _ = reference.gru(inputs["x"], zero_bias, inputs["h0"], variant="reset_after")
    assert np.max(np.abs(y_notes - y_after)) > 1e-3


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_lengths_keep_state_and_emit_zeros(cell):
    op = catalog.get(cell)
    inputs = op.inputs({"T": 6, "B": 3, "I": 2, "H": 4})
    lengths = np.array([6, 2, 0])
    out = reference.FORWARD[cell](**{**inputs, "lengths": lengths})
    for b, L in enumerate(lengths):
        one = {**inputs, "x": inputs["x"][:max(L, 1), b : b + 1], "h0": inputs["h0"][b : b + 1]}
        if "c0" in inputs:
            one["c0"] = inputs["c0"][b : b + 1]
        alone = reference.FORWARD[cell](**one)
        assert np.all(out[0][L:, b] == 0)
        if L == 0:  # a length-0 sequence returns its initial state
            np.testing.assert_array_equal(out[1][b], inputs["h0"][b])
            if cell == "lstm":
                np.testing.assert_array_equal(out[2][b], inputs["c0"][b])
        else:
            np.testing.assert_allclose(out[0][:L, b], alone[0][:, 0], rtol=1e-14)
            for final, final_alone in zip(out[1:], alone[1:]):
                np.testing.assert_allclose(final[b], final_alone[0], rtol=1e-14)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_reverse_reads_each_sequence_backwards_within_its_length(cell):
    op = catalog.get(cell)
    inputs = op.inputs({"T": 5, "B": 2, "I": 3, "H": 4})
    lengths = np.array([5, 3])
    y, *_ = reference.FORWARD[cell](**{**inputs, "lengths": lengths, "reverse": True})
    for b, L in enumerate(lengths):
        flipped = {**inputs, "x": inputs["x"][:L, b : b + 1][::-1], "h0": inputs["h0"][b : b + 1]}
        if "c0" in inputs:
            flipped["c0"] = inputs["c0"][b : b + 1]
        y_flipped = reference.FORWARD[cell](**flipped)[0]
        np.testing.assert_allclose(y[:L, b], y_flipped[::-1, 0], rtol=1e-14)
        assert np.all(y[L:, b] == 0)


def test_bidirectional_is_forward_and_reverse_concatenated():
    op = catalog.get("bidirectional_lstm")
    inputs = op.inputs({"T": 5, "B": 3, "I": 2, "H": 4, "ragged": True})
    y, h_T, C_T = reference.bidirectional(**inputs)
    common = {"x": inputs["x"], "lengths": inputs["lengths"]}
    y_f, h_f, C_f = reference.lstm(params=inputs["params_fwd"], h0=inputs["h0"][0], c0=inputs["c0"][0], **common)
    y_b, h_b, C_b = reference.lstm(params=inputs["params_bwd"], h0=inputs["h0"][1], c0=inputs["c0"][1], reverse=True, **common)
    np.testing.assert_array_equal(y, np.concatenate([y_f, y_b], -1))
    np.testing.assert_array_equal(h_T, np.stack([h_f, h_b]))
    np.testing.assert_array_equal(C_T, np.stack([C_f, C_b]))


def test_stacked_feeds_each_layer_the_one_below():
    op = catalog.get("stacked_gru")
    inputs = op.inputs({"T": 4, "B": 2, "I": 3, "H": 5, "L": 3})
    y, h_T = reference.stacked(**inputs)
    layer_input = inputs["x"]
    for layer, p in enumerate(inputs["params"]):
        layer_input, h = reference.gru(layer_input, p, inputs["h0"][layer])
        np.testing.assert_array_equal(h_T[layer], h)
    np.testing.assert_array_equal(y, layer_input)


def test_rnn_types_compose_the_cell():
    p = catalog.get("rnn").inputs({"T": 1, "B": 1, "I": 3, "H": 3})["params"]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 2, 3))
    y, h_T = reference.rnn(x, p, lengths=np.array([4, 2]))
    np.testing.assert_array_equal(reference.many_to_one("rnn", x, p, lengths=np.array([4, 2])), h_T)
    np.testing.assert_array_equal(reference.many_to_many("rnn", x, p, lengths=np.array([4, 2])), y)
    np.testing.assert_allclose(reference.one_to_one("rnn", x[0], p), np.tanh(x[0] @ p["W_x"].T + p["b"]))

    readout = {"W_y": np.eye(3), "b_y": np.zeros(3)}  # feed the state back as the next input
    generated = reference.one_to_many("rnn", x[0], p, readout, steps=3)
    h, expected = np.zeros((2, 3)), []
    inp = x[0]
    for _ in range(3):
        h = np.tanh(inp @ p["W_x"].T + h @ p["W_h"].T + p["b"])
        inp = h
        expected.append(h)
    np.testing.assert_allclose(generated, np.stack(expected), rtol=1e-14)

    x_dec = rng.standard_normal((2, 2, 3))
    _, h_enc = reference.rnn(x, p)
    np.testing.assert_array_equal(reference.encoder_decoder("rnn", x, x_dec, p, p), reference.rnn(x_dec, p, h0=h_enc)[0])


def test_sequence_loss_by_hand():
    logits = np.array([[[1.0, 2.0, 0.5]], [[0.0, 0.0, 3.0]]])  # (T=2, B=1, V=3)
    targets = np.array([[1], [0]])
    expected = -(2.0 - np.log(np.exp([1.0, 2.0, 0.5]).sum())) - (0.0 - np.log(np.exp([0.0, 0.0, 3.0]).sum()))
    np.testing.assert_allclose(reference.sequence_loss(logits, targets), expected, rtol=1e-14)
    np.testing.assert_allclose(reference.sequence_loss(logits, targets, lengths=np.array([1])),
                               -(2.0 - np.log(np.exp([1.0, 2.0, 0.5]).sum())), rtol=1e-14)


def test_softmax_is_stable_for_huge_logits():
    a = np.array([1000.0, 1000.0, -1000.0])
    np.testing.assert_allclose(reference.softmax(a), [0.5, 0.5, 0.0])
    assert np.all(np.isfinite(reference.log_softmax(a)[:2]))
    np.testing.assert_allclose(reference.sigmoid(np.array([-1000.0, 0.0, 1000.0])), [0.0, 0.5, 1.0])


def test_reference_computes_in_the_dtype_of_its_inputs():
    op = catalog.get("lstm")
    inputs = op.inputs({"T": 3, "B": 2, "I": 2, "H": 3})
    as32 = {**inputs, "x": inputs["x"].astype(np.float32), "h0": inputs["h0"].astype(np.float32),
            "c0": inputs["c0"].astype(np.float32), "params": {k: v.astype(np.float32) for k, v in inputs["params"].items()}}
    assert all(out.dtype == np.float32 for out in reference.lstm(**as32))
    assert all(out.dtype == np.float64 for out in reference.lstm(**inputs))


def test_gradient_norms_vanish_for_a_contractive_rnn_and_explode_for_an_expansive_one():
    rng = np.random.default_rng(0)
    H, I, T = 8, 2, 30
    x = 0.1 * rng.standard_normal((T, 4, I))
    Q, _ = np.linalg.qr(rng.standard_normal((H, H)))  # orthogonal: every singular value is 1
    base = {"W_x": 0.1 * rng.standard_normal((H, I)), "b": np.zeros(H)}
    small = reference.gradient_norms("rnn", x, {**base, "W_h": 0.5 * Q})
    large = reference.gradient_norms("rnn", x, {**base, "W_h": 3.0 * Q})
    assert small.shape == (T,)
    assert np.all(np.diff(small) > 0)  # grows toward the last step: vanishes backwards in time
    assert small[0] / small[-1] < 1e-6
    assert large[0] / large[-1] > 1e3  # grows backwards in time: explodes
    for op in ("lstm", "gru"):
        inputs = catalog.get(op).inputs({"T": 6, "B": 2, "I": 2, "H": 3})
        norms = reference.gradient_norms(op, inputs["x"], inputs["params"])
        assert norms.shape == (6,) and np.all(np.isfinite(norms))
