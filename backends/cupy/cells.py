"""One recurrent cell over one sequence in the cupy backend: GEMMs plus the fused step kernels of
``kernels/rnn_cells.cu``, forward and backward (BPTT), written against a :class:`~.context.Context` so the same
code runs on a GPU and, in the tests, on the CPU through the kernels' host build.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .context import Context


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
    """Stack the gates' matrices into GEMM operands, one per side (``W_x: (G·H, I)``, ``W_h: (R·H, H)``, gates in
    the order of :data:`CELLS`), and their transposes, contiguous."""
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
    """``(y, h_T, C_T or None, tape)`` for one cell over ``x: (T, B, I)`` from ``h0, c0: (B, H)``.

    reference.scan's conventions (``lengths`` ragged, ``reverse`` within lengths)::

        xp_all = x W_xᵀ + b_x                              (T·B, G·H)  one GEMM for all steps
        for t:  hp = h_{t-1} W_hᵀ                          (B, G·H)    recurrent GEMM
                <cell>_forward_step(xp_all[t], hp, ...)    one fused kernel: gates, state, mask

    The notes' GRU applies ``r`` before its ``W_hh`` product, so its step has a second GEMM and kernel.
    The step loop allocates nothing and reads nothing back, so a GPU context can run it from a CUDA graph
    (:mod:`.graphs`): captured once, replayed per call.
    """
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
    """BPTT: ``(dx, dh0, dc0 or None, d_params)`` given ``dy: (T, B, H)`` and the final-state cotangents::

        for t = T-1 .. 0:  da_t = <cell>_backward_step(dh, dc, dh_rec, dy_t, ...)
                           dh_rec = da_t W_h               (the gradient reaching h_{t-1})
        dW_x = daᵀ x,  dW_h = daᵀ h_{<T},  db = Σ da,  dx = da W_x   (GEMMs over all T·B rows)

    Like the forward's, the step loop can run from a CUDA graph.
    """
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
