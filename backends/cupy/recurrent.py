"""The catalog's recurrent functions in the cupy backend (one cell, bidirectional, stacked), forward and gradients,
composed of :mod:`.cells`' single passes."""

from __future__ import annotations

from .cells import cell_backward, cell_forward, cell_spec, lengths_or_full, pack
from .context import Context


def _zeros_state(xp, value, shape, dtype):
    return xp.zeros(shape, dtype=dtype) if value is None else value


class _Call:
    """One cell over one sequence with checked device inputs, forward kept for the backward."""

    def __init__(self, ctx, spec, params, x, h0, c0, lengths, reverse):
        xp = ctx.xp
        self.ctx, self.spec = ctx, spec
        self.P = pack(xp, spec, params)
        T, B, _ = x.shape
        H = self.P.W_h.shape[1]
        self.x = xp.ascontiguousarray(x)
        self.h0 = _zeros_state(xp, h0, (B, H), x.dtype)
        self.c0 = _zeros_state(xp, c0, (B, H), x.dtype) if spec.has_c else None
        self.lengths = lengths_or_full(xp, lengths, T, B)
        self.reverse = bool(reverse)

    def forward(self):
        y, h_T, c_T, self.tape = cell_forward(self.ctx, self.spec, self.P, self.x, self.h0, self.c0, self.lengths,
                                              self.reverse)
        return y, h_T, c_T

    def backward(self, dy, dh_T, dc_T):
        return cell_backward(self.ctx, self.spec, self.P, self.tape, dy, dh_T, dc_T)


def _states(spec, h, c):
    return (h, c) if spec.has_c else (h,)


def recurrent_forward(ctx: Context, function: str, inputs: dict) -> tuple:
    """Forward of reference function ``function`` (rnn, lstm, gru, bidirectional, stacked) on device inputs."""
    return _recurrent(ctx, function, inputs, cotangents=None)


def recurrent_vjp(ctx: Context, function: str, cotangents: tuple, inputs: dict) -> dict:
    """Gradients of ``function`` with the reference's structure, given one cotangent per output."""
    return _recurrent(ctx, function, inputs, cotangents=cotangents)


def _recurrent(ctx, function, inputs, cotangents):
    if function in ("rnn", "lstm", "gru"):
        return _single(ctx, cell_spec(function, inputs.get("variant", "notes")), inputs, cotangents)
    spec = cell_spec(inputs["cell"], inputs.get("variant", "notes"))
    if function == "bidirectional":
        return _bidirectional(ctx, spec, inputs, cotangents)
    return _stacked(ctx, spec, inputs, cotangents)


def _single(ctx, spec, a, cotangents):
    call = _Call(ctx, spec, a["params"], a["x"], a.get("h0"), a.get("c0"), a.get("lengths"), a.get("reverse", False))
    y, h_T, c_T = call.forward()
    if cotangents is None:
        return (y,) + _states(spec, h_T, c_T)
    dy, dh_T, *dc_T = cotangents
    dx, dh0, dc0, grads = call.backward(dy, dh_T, dc_T[0] if spec.has_c else None)
    return {"x": dx, "h0": dh0, **({"c0": dc0} if spec.has_c else {}), "params": grads}


def _layer_state(value, k):
    return None if value is None else value[k]


def _bidirectional(ctx, spec, a, cotangents):
    xp = ctx.xp
    x, h0, c0, lengths = a["x"], a.get("h0"), a.get("c0"), a.get("lengths")
    calls = [
        _Call(ctx, spec, a[name], x, _layer_state(h0, k), _layer_state(c0, k), lengths, reverse)
        for k, (name, reverse) in enumerate((("params_fwd", False), ("params_bwd", True)))
    ]
    outs = [call.forward() for call in calls]
    if cotangents is None:
        y = xp.concatenate([outs[0][0], outs[1][0]], axis=-1)
        states = [xp.stack([outs[0][1], outs[1][1]])]
        if spec.has_c:
            states.append(xp.stack([outs[0][2], outs[1][2]]))
        return (y, *states)
    dy, dh_T, *dc_T = cotangents
    H = outs[0][0].shape[-1]
    dy_parts = (dy[..., :H], dy[..., H:])
    results = [
        call.backward(xp.ascontiguousarray(dy_parts[k]), dh_T[k], dc_T[0][k] if spec.has_c else None)
        for k, call in enumerate(calls)
    ]
    grads = {"x": results[0][0] + results[1][0], "h0": xp.stack([results[0][1], results[1][1]])}
    if spec.has_c:
        grads["c0"] = xp.stack([results[0][2], results[1][2]])
    return {**grads, "params_fwd": results[0][3], "params_bwd": results[1][3]}


def _stacked(ctx, spec, a, cotangents):
    xp = ctx.xp
    inputs, calls, finals = a["x"], [], []
    h0, c0 = a.get("h0"), a.get("c0")
    for layer, params in enumerate(a["params"]):
        call = _Call(ctx, spec, params, inputs, _layer_state(h0, layer), _layer_state(c0, layer), a.get("lengths"),
                     a.get("reverse", False))
        inputs, h_T, c_T = call.forward()
        calls.append(call)
        finals.append((h_T, c_T))
    if cotangents is None:
        states = [xp.stack([f[0] for f in finals])]
        if spec.has_c:
            states.append(xp.stack([f[1] for f in finals]))
        return (inputs, *states)
    dy, dh_T, *dc_T = cotangents
    layer_grads, dh0, dc0 = [None] * len(calls), [None] * len(calls), [None] * len(calls)
    for layer in reversed(range(len(calls))):
        dy, dh0[layer], dc0[layer], layer_grads[layer] = calls[layer].backward(
            dy, dh_T[layer], dc_T[0][layer] if spec.has_c else None)
    grads = {"x": dy, "h0": xp.stack(dh0)}
    if spec.has_c:
        grads["c0"] = xp.stack(dc0)
    return {**grads, "params": layer_grads}


FUNCTIONS = ("rnn", "lstm", "gru", "bidirectional", "stacked")
