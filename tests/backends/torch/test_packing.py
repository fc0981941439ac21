"""Packing the notes' parameters into PyTorch's nn.RNN/nn.LSTM/nn.GRU layout, both ways.

Round trips (notes -> PyTorch -> notes, and PyTorch -> notes -> PyTorch), the
native modules with packed notes parameters against the float64 reference,
gradients unpacked from the module against the reference's, and the proof
that ``nn.GRU`` computes the variant ``reset_after``, not the notes' GRU.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from seqbench import catalog, reference  # noqa: E402
from seqbench.backends.torch.packing import pack, pack_layers, suffix, unpack  # noqa: E402

# cell -> (catalog op whose parameters it packs, native module)
CELLS = {
    "rnn": ("rnn", lambda I, H: torch.nn.RNN(I, H, nonlinearity="tanh", dtype=torch.float64)),
    "lstm": ("lstm", lambda I, H: torch.nn.LSTM(I, H, dtype=torch.float64)),
    "gru": ("gru_reset_after", lambda I, H: torch.nn.GRU(I, H, dtype=torch.float64)),
}
T, B, I, H = 6, 3, 4, 5


def _inputs(op_name, seed=0):
    inputs = catalog.get(op_name).inputs({"T": T, "B": B, "I": I, "H": H, "ragged": True}, seed)
    inputs["lengths"] = None
    return inputs


def _tensors(tree):
    return {k: torch.as_tensor(v) for k, v in tree.items()}


def _close(a, b, tol=1e-12):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=tol, atol=tol)


@pytest.mark.parametrize("cell", CELLS)
def test_round_trip_from_notes(cell):
    params = _tensors(_inputs(CELLS[cell][0])["params"])
    back = unpack(cell, pack(cell, params))
    assert set(back) == set(params)
    for k in params:
        _close(back[k], params[k], 0)


@pytest.mark.parametrize("cell", CELLS)
def test_round_trip_from_torch(cell):
    """A module's own parameters survive torch -> notes -> torch (RNN/LSTM: biases merged into ``b_ih``)."""
    module = CELLS[cell][1](I, H)
    torch_params = {k: v.detach() for k, v in module.named_parameters()}
    packed = pack(cell, unpack(cell, torch_params))
    for k in ("weight_ih_l0", "weight_hh_l0"):
        _close(packed[k], torch_params[k], 0)
    if cell == "gru":
        _close(packed["bias_ih_l0"], torch_params["bias_ih_l0"], 0)
        _close(packed["bias_hh_l0"], torch_params["bias_hh_l0"], 0)
    else:  # one bias per gate in the notes: b = b_ih + b_hh
        _close(packed["bias_ih_l0"], torch_params["bias_ih_l0"] + torch_params["bias_hh_l0"])
        _close(packed["bias_hh_l0"], torch.zeros(len(packed["bias_hh_l0"])), 0)


def test_gate_layout():
    """LSTM blocks are i, f, g(C~), o; the GRU's z block holds the negated notes parameters."""
    lstm = _tensors(_inputs("lstm")["params"])
    rows = pack("lstm", lstm)["weight_ih_l0"].chunk(4)
    for block, gate in zip(rows, "ifCo"):
        _close(block, lstm[f"W_{gate}x"], 0)
    gru = _tensors(_inputs("gru_reset_after")["params"])
    r, z, n = pack("gru", gru)["bias_hh_l0"].chunk(3)
    _close(r, gru["b_rh"], 0)
    _close(z, -gru["b_zh"], 0)
    _close(n, gru["b_hh"], 0)


def test_pack_rejects_the_notes_gru():
    notes = _tensors(_inputs("gru")["params"])
    with pytest.raises(ValueError, match="reset_after"):
        pack("gru", notes)


def _module_run(cell, module_params, inputs):
    """Run a float64 native module with the given PyTorch-layout parameters; returns (y, *states, module)."""
    module = CELLS[cell][1](I, H)
    with torch.no_grad():
        for k, v in module_params.items():
            getattr(module, k).copy_(v)
    x = torch.as_tensor(inputs["x"])
    h0 = torch.as_tensor(inputs["h0"])[None]
    if cell == "lstm":
        y, (h, c) = module(x, (h0, torch.as_tensor(inputs["c0"])[None]))
        return (y, h[0], c[0]), module
    y, h = module(x, h0)
    return (y, h[0]), module


@pytest.mark.parametrize("cell", CELLS)
def test_native_module_with_packed_params_matches_reference(cell):
    op = catalog.get(CELLS[cell][0])
    inputs = _inputs(op.name, seed=1)
    outputs, module = _module_run(cell, pack(cell, _tensors(inputs["params"])), inputs)
    expected = op.reference(**inputs)
    for got, want in zip(outputs, expected):
        _close(got.detach(), want)


@pytest.mark.parametrize("cell", CELLS)
def test_unpacked_module_gradients_match_reference(cell):
    """``unpack(..., gradient=True)`` of the module's parameter gradients is the reference's params gradient."""
    op = catalog.get(CELLS[cell][0])
    inputs = _inputs(op.name, seed=2)
    outputs, module = _module_run(cell, pack(cell, _tensors(inputs["params"])), inputs)
    cotangents = op.cotangents(op.reference(**inputs), seed=2)
    torch.autograd.backward(outputs, [torch.as_tensor(c) for c in cotangents])
    grads = unpack(cell, {k: v.grad for k, v in module.named_parameters()}, gradient=True)
    expected = op.reference_vjp(cotangents, **inputs)["params"]
    for k in expected:
        _close(grads[k], expected[k], 1e-10)


def test_unpacked_module_is_the_same_function():
    """Any nn.LSTM (two biases) unpacks to notes parameters the reference agrees with."""
    module = CELLS["lstm"][1](I, H)
    inputs = _inputs("lstm", seed=3)
    inputs["params"] = {k: v.detach().numpy() for k, v in unpack("lstm", dict(module.named_parameters())).items()}
    outputs, _ = _module_run("lstm", dict(module.named_parameters()), inputs)
    for got, want in zip(outputs, reference.lstm(**inputs)):
        _close(got.detach(), want)


def test_nn_gru_is_not_the_notes_gru():
    """nn.GRU given the notes' GRU weights (and zero biases) computes ``reset_after``, not the notes' GRU."""
    inputs = _inputs("gru", seed=4)  # the notes' variant: no biases
    params = {**inputs["params"], **{f"b_{g}{s}": np.zeros(H) for g in "zrh" for s in "xh"}}
    (y, h_T), _ = _module_run("gru", pack("gru", _tensors(params)), inputs)
    reset_after = reference.gru(inputs["x"], params, inputs["h0"], variant="reset_after")
    notes = reference.gru(**inputs)
    _close(y.detach(), reset_after[0])
    _close(h_T.detach(), reset_after[1])
    gap = np.max(np.abs(y.detach().numpy() - notes[0]))
    assert gap > 1e-2, f"nn.GRU matches the notes' GRU (max gap {gap:.2e}); it must not"


def test_pack_layers_names_every_module_parameter():
    """A 2-layer bidirectional module's parameters are exactly what :func:`pack_layers` produces."""
    module = torch.nn.LSTM(I, H, num_layers=2, bidirectional=True, dtype=torch.float64)
    lstm = _tensors(_inputs("lstm")["params"])
    upper = {k: torch.zeros(H, 2 * H) if k.endswith("x") else v for k, v in lstm.items()}  # layer 1 reads 2H
    packed = pack_layers("lstm", [[lstm, lstm], [upper, upper]])
    assert set(packed) == {k for k, _ in module.named_parameters()}
    assert suffix(1, True) == "_l1_reverse"
    for k, v in module.named_parameters():
        assert packed[k].shape == v.shape, k
