"""The recurrent ops of the ``cupy`` backend: GEMMs plus the fused kernels of ``kernels/rnn_cells.cu``.

Written against an array module ``xp`` and a kernel launcher (a :class:`Context`),
so the same code runs on a GPU (``xp = cupy``, kernels compiled by nvcc/NVRTC)
and, in the tests, on the CPU (``xp = numpy``, the kernels' host build called
through ctypes): the kernel math *and* this orchestration are checked against
the reference without a GPU.

One cell over one sequence (reference.scan conventions: ``x: (T, B, I)``,
``lengths`` ragged, ``reverse`` within lengths)::

    xp_all = x W_xᵀ + b_x                              (T·B, G·H)  one GEMM for all steps
    for t:  hp = h_{t-1} W_hᵀ                          (B, G·H)    recurrent GEMM
            <cell>_forward_step(xp_all[t], hp, ...)    one fused kernel: gates, state, mask

and its backward pass (BPTT)::

    for t = T-1 .. 0:  da_t = <cell>_backward_step(dh, dc, dh_rec, dy_t, ...)
                       dh_rec = da_t W_h               (the gradient reaching h_{t-1})
    dW_x = daᵀ x,  dW_h = daᵀ h_{<T},  db = Σ da,  dx = da W_x   (GEMMs over all T·B rows)

Both loops allocate nothing and read nothing back, so a GPU context can run
them from CUDA graphs (:mod:`.graphs`): captured once, replayed per call.

Gates of a cell are packed into one matrix per side (``W_x: (G·H, I)``,
``W_h: (R·H, H)``), in the order of :data:`CELLS`. The notes' GRU applies
``r`` before its ``W_hh`` product, so its step has a second GEMM and kernel.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

SUFFIX = {"float32": "f32", "float64": "f64", "float16": "f16"}


@dataclass(frozen=True)
class CellSpec:
    """How a cell's parameters pack into GEMM operands and what its kernels are called.

    ``x_names``: the ``W_*x`` of the G gates, in kernel order (rows of ``W_x``);
    ``h_names``: the ``W_*h`` of the R gates of the (first) recurrent GEMM;
    ``bx_names``/``bh_names``: biases added to ``x W_xᵀ`` / inside the kernel;
    ``hh_name``: the notes GRU's ``W_hh``, applied to ``r ⊙ h_{t-1}`` in a second GEMM;
    ``saved``: slots per unit the forward keeps for the backward; ``kernel``: kernel name stem.
    """

    kernel: str
    x_names: tuple
    h_names: tuple
    bx_names: tuple = ()
    bh_names: tuple = ()
    hh_name: str | None = None
    saved: int = 1
    has_c: bool = False

    @property
    def G(self) -> int:
        return len(self.x_names)

    @property
    def R(self) -> int:
        return len(self.h_names)


CELLS = {
    "rnn": CellSpec("rnn", ("W_x",), ("W_h",), ("b",)),
    "lstm": CellSpec(
        "lstm", ("W_fx", "W_ix", "W_ox", "W_Cx"), ("W_fh", "W_ih", "W_oh", "W_Ch"), ("b_f", "b_i", "b_o", "b_C"),
        saved=4, has_c=True,
    ),
    "gru_notes": CellSpec("gru_notes", ("W_zx", "W_rx", "W_hx"), ("W_zh", "W_rh"), hh_name="W_hh", saved=3),
    "gru_reset_after": CellSpec(
        "gru_reset_after", ("W_zx", "W_rx", "W_hx"), ("W_zh", "W_rh", "W_hh"),
        ("b_zx", "b_rx", "b_hx"), ("b_zh", "b_rh", "b_hh"), saved=4,
    ),
}


def cell_spec(cell: str, variant: str = "notes") -> CellSpec:
    return CELLS[f"gru_{variant}" if cell == "gru" else cell]


@dataclass
class Context:
    """Where the ops run: an array module, a launcher ``launch(name, dtype, n, *args)`` of the
    elementwise kernels (``n`` threads), ``launch_warps(name, dtype, n, *args)`` of the
    one-warp-per-item kernels, and optionally:

    * ``persistent(spec, packed, buffers) -> bool``, which runs a whole forward
      sequence in one persistent kernel when it fits (GPU only);
    * ``gemm(a, b, out)``: the step loops' GEMM ``out = a @ b`` (default ``xp.matmul``);
    * ``graphs(tag, buffers, loop) -> path``: runs a step loop that touches exactly
      ``buffers``, e.g. from a CUDA graph (:class:`.graphs.StepGraphs`);
      without it the loop runs as it is (path ``"fused"``).

    ``paths`` collects the path each forward sequence took: ``"persistent"``,
    ``"graph"`` or ``"fused"`` (the step-by-step loop run from the host).
    """

    xp: object
    launch: Callable
    launch_warps: Callable
    persistent: Callable | None = None
    gemm: Callable | None = None
    graphs: Callable | None = None
    paths: list = field(default_factory=list)

    def matmul(self, a, b, out):
        if self.gemm is None:
            self.xp.matmul(a, b, out=out)
        else:
            self.gemm(a, b, out)

    def steps(self, tag: tuple, buffers: tuple, loop: Callable) -> str:
        if self.graphs is None:
            loop()
            return "fused"
        return self.graphs(tag, buffers, loop)


# ---- parameters ------------------------------------------------------------------------------


@dataclass
class Packed:
    W_x: object  # (G·H, I)
    W_xT: object  # (I, G·H)
    b_x: object | None  # (G·H,)
    W_h: object  # (R·H, H)
    W_hT: object  # (H, R·H)
    b_h: object | None  # (R·H,) reset_after
    W_hh: object | None  # (H, H) notes GRU
    W_hhT: object | None


def pack(xp, spec: CellSpec, p: dict) -> Packed:
    """Stack the gates' matrices into GEMM operands (and their transposes, contiguous)."""
    W_x = xp.concatenate([p[k] for k in spec.x_names], axis=0)
    W_h = xp.concatenate([p[k] for k in spec.h_names], axis=0)
    W_hh = p[spec.hh_name] if spec.hh_name else None
    return Packed(
        W_x=W_x, W_xT=xp.ascontiguousarray(W_x.T),
        b_x=xp.concatenate([p[k] for k in spec.bx_names]) if spec.bx_names else None,
        W_h=W_h, W_hT=xp.ascontiguousarray(W_h.T),
        b_h=xp.concatenate([p[k] for k in spec.bh_names]) if spec.bh_names else None,
        W_hh=W_hh, W_hhT=None if W_hh is None else xp.ascontiguousarray(W_hh.T),
    )


def unpack_grads(spec: CellSpec, H: int, dW_x, dW_h, db_x, db_h, dW_hh) -> dict:
    """The packed gradients split back into the reference's parameter names."""
    grads = {}
    for g, name in enumerate(spec.x_names):
        grads[name] = dW_x[g * H:(g + 1) * H]
    for g, name in enumerate(spec.h_names):
        grads[name] = dW_h[g * H:(g + 1) * H]
    for g, name in enumerate(spec.bx_names):
        grads[name] = db_x[g * H:(g + 1) * H]
    for g, name in enumerate(spec.bh_names):
        grads[name] = db_h[g * H:(g + 1) * H]
    if spec.hh_name:
        grads[spec.hh_name] = dW_hh
    return grads


# ---- lengths and reversal ----------------------------------------------------------------------


def lengths_or_full(xp, lengths, T: int, B: int):
    """``lengths`` as a contiguous int32 device array; ``None`` means every sequence has ``T`` steps."""
    if lengths is None:
        return xp.full(B, T, dtype=np.int32)
    return xp.ascontiguousarray(lengths.astype(np.int32))


def reverse_within_lengths(xp, a, lengths):
    """``a: (T, B, ...)`` reversed in time within each sequence's length (reference.scan); its own inverse."""
    T, B = a.shape[:2]
    t = xp.arange(T)[:, None]
    index = xp.where(t < lengths[None, :], lengths[None, :] - 1 - t, t)  # (T, B)
    return xp.ascontiguousarray(a[index, xp.arange(B)[None, :]])


# ---- one cell over one sequence ------------------------------------------------------------------


@dataclass
class Tape:
    """What the forward pass keeps for the backward pass."""

    x: object  # (T, B, I), in processing order (reversed when reverse)
    hs: object  # (T+1, B, H): hs[0] = h0, hs[t+1] = state after step t
    cs: object | None  # (T+1, B, H) LSTM cell states
    saved: object  # (T, B, S·H)
    rh: object | None  # (T, B, H) notes GRU: r ⊙ h_{t-1}
    lengths: object  # (B,) int32
    reverse: bool


def cell_forward(ctx: Context, spec: CellSpec, P: Packed, x, h0, c0, lengths, reverse: bool):
    """``(y, h_T, C_T or None, tape)`` for one cell over ``x: (T, B, I)`` from ``h0, c0: (B, H)``."""
    xp = ctx.xp
    T, B, I = x.shape
    H = P.W_h.shape[1]
    dtype = x.dtype.name
    if reverse:
        x = reverse_within_lengths(xp, x, lengths)
    xp_all = xp.matmul(x.reshape(T * B, I), P.W_xT).reshape(T, B, spec.G * H)  # hoisted input projection
    if P.b_x is not None:
        xp_all += P.b_x
    hs = xp.empty((T + 1, B, H), dtype=x.dtype)
    hs[0] = h0
    cs = None
    if spec.has_c:
        cs = xp.empty((T + 1, B, H), dtype=x.dtype)
        cs[0] = c0
    y = xp.empty((T, B, H), dtype=x.dtype)
    saved = xp.empty((T, B, spec.saved * H), dtype=x.dtype)
    rh = xp.empty((T, B, H), dtype=x.dtype) if spec.hh_name else None

    ran = ctx.persistent is not None and T > 0 and ctx.persistent(spec, P, xp_all, hs, cs, y, saved, rh, lengths)
    ctx.paths.append("persistent" if ran else _forward_steps(ctx, spec, P, xp_all, hs, cs, y, saved, rh, lengths,
                                                             dtype))
    tape = Tape(x, hs, cs, saved, rh, lengths, reverse)
    if reverse:
        y = reverse_within_lengths(xp, y, lengths)
    return y, hs[T], (cs[T] if spec.has_c else None), tape


def _forward_steps(ctx, spec, P, xp_all, hs, cs, y, saved, rh, lengths, dtype) -> str:
    """The step-by-step path: per step one recurrent GEMM and one fused kernel (two for the notes GRU).

    The loop allocates nothing and reads nothing back, so it can be captured (``ctx.steps``).
    """
    xp, launch = ctx.xp, ctx.launch
    T, B, _ = xp_all.shape
    H = hs.shape[2]
    n = B * H
    hp = xp.empty((B, spec.R * H), dtype=hs.dtype)
    hp2 = xp.empty((B, H), dtype=hs.dtype) if spec.hh_name else None

    def loop():
        for t in range(T):
            ctx.matmul(hs[t], P.W_hT, hp)
            i32 = np.int32(t)
            if spec.kernel == "rnn":
                launch("rnn_forward_step", dtype, n, xp_all[t], hp, hs[t], hs[t + 1], y[t], saved[t], lengths, i32, B,
                       H)
            elif spec.kernel == "lstm":
                launch("lstm_forward_step", dtype, n, xp_all[t], hp, hs[t], cs[t], hs[t + 1], cs[t + 1], y[t],
                       saved[t], lengths, i32, B, H)
            elif spec.kernel == "gru_reset_after":
                launch("gru_reset_after_step", dtype, n, xp_all[t], hp, P.b_h, hs[t], hs[t + 1], y[t], saved[t],
                       lengths, i32, B, H)
            else:  # gru_notes: gates, then h~ from (r ⊙ h_{t-1}) W_hhᵀ
                launch("gru_notes_gates_step", dtype, n, xp_all[t], hp, hs[t], rh[t], saved[t], B, H)
                ctx.matmul(rh[t], P.W_hhT, hp2)
                launch("gru_notes_candidate_step", dtype, n, xp_all[t], hp2, hs[t], hs[t + 1], y[t], saved[t],
                       lengths, i32, B, H)

    buffers = (xp_all, hs, cs, y, saved, rh, lengths, P.W_hT, P.b_h, P.W_hhT, hp, hp2)
    return ctx.steps(("forward", spec.kernel), buffers, loop)


def cell_backward(ctx: Context, spec: CellSpec, P: Packed, tape: Tape, dy, dh_T, dc_T):
    """BPTT: ``(dx, dh0, dc0 or None, d_params)`` given ``dy: (T, B, H)`` and the final-state cotangents."""
    xp, launch = ctx.xp, ctx.launch
    T, B, I = tape.x.shape
    H = tape.hs.shape[2]
    dtype = tape.x.dtype.name
    n = B * H
    if tape.reverse:
        dy = reverse_within_lengths(xp, dy, tape.lengths)
    dy = xp.ascontiguousarray(dy)
    dh = xp.array(dh_T, dtype=tape.x.dtype)  # dL/ds_t not through W_h (carried and direct parts)
    dh_rec = xp.zeros((B, H), dtype=tape.x.dtype)  # dL/ds_t through W_h: da_{t+1} W_h
    dc = xp.array(dc_T, dtype=tape.x.dtype) if spec.has_c else None
    da_x = xp.empty((T, B, spec.G * H), dtype=tape.x.dtype)  # preactivation gradients, x side
    da_h = xp.empty((T, B, spec.R * H), dtype=tape.x.dtype) if spec.bh_names else da_x  # h side (reset_after)
    d_rh = xp.empty((B, H), dtype=tape.x.dtype) if spec.hh_name else None
    L = tape.lengths

    def loop():
        for t in reversed(range(T)):
            i32 = np.int32(t)
            if spec.kernel == "rnn":
                launch("rnn_backward_step", dtype, n, dh, dh_rec, dy[t], tape.saved[t], da_x[t], L, i32, B, H)
                ctx.matmul(da_x[t], P.W_h, dh_rec)
            elif spec.kernel == "lstm":
                launch("lstm_backward_step", dtype, n, dh, dc, dh_rec, dy[t], tape.saved[t], tape.cs[t], da_x[t], L,
                       i32, B, H)
                ctx.matmul(da_x[t], P.W_h, dh_rec)
            elif spec.kernel == "gru_reset_after":
                launch("gru_reset_after_backward_step", dtype, n, dh, dh_rec, dy[t], tape.saved[t], tape.hs[t],
                       da_x[t], da_h[t], L, i32, B, H)
                ctx.matmul(da_h[t], P.W_h, dh_rec)
            else:  # gru_notes: da_z, da_h; then d(r ⊙ h) = da_h W_hh gives da_r
                launch("gru_notes_backward_step_1", dtype, n, dh, dh_rec, dy[t], tape.saved[t], tape.hs[t], da_x[t],
                       L, i32, B, H)
                ctx.matmul(da_x[t][:, 2 * H:], P.W_hh, d_rh)
                launch("gru_notes_backward_step_2", dtype, n, dh, d_rh, tape.saved[t], tape.hs[t], da_x[t], B, H)
                ctx.matmul(da_x[t][:, :2 * H], P.W_h, dh_rec)

    buffers = (dh, dh_rec, dc, dy, tape.saved, tape.cs, tape.hs, da_x, da_h, d_rh, L, P.W_h, P.W_hh)
    ctx.steps(("backward", spec.kernel), buffers, loop)
    dh0 = dh + dh_rec

    # weight gradients: GEMMs over all T·B rows at once
    A_x = da_x.reshape(T * B, spec.G * H)
    h_prev = tape.hs[:T].reshape(T * B, H)
    dW_x = xp.matmul(A_x.T, tape.x.reshape(T * B, I))
    dx = xp.matmul(A_x, P.W_x).reshape(T, B, I)
    db_x = A_x.sum(axis=0) if spec.bx_names else None
    dW_hh = db_h = None
    if spec.hh_name:  # notes GRU: [z, r] rows against h_{t-1}, the h~ row against r ⊙ h_{t-1}
        dW_h = xp.matmul(A_x[:, :2 * H].T, h_prev)
        dW_hh = xp.matmul(A_x[:, 2 * H:].T, tape.rh.reshape(T * B, H))
    else:
        A_h = da_h.reshape(T * B, spec.R * H)
        dW_h = xp.matmul(A_h.T, h_prev)
        db_h = A_h.sum(axis=0) if spec.bh_names else None
    if tape.reverse:
        dx = reverse_within_lengths(xp, dx, tape.lengths)
    return dx, dh0, dc, unpack_grads(spec, H, dW_x, dW_h, db_x, db_h, dW_hh)


# ---- the catalog's recurrent functions ----------------------------------------------------------


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
