// rnn_cells.cu — fused per-step elementwise kernels of the RNN, LSTM and GRU cells, forward and backward.
//
// The backend (backends/cupy/cells.py) runs a sequence as
//
//   xp = x W_x^T + b                (all T steps, ONE GEMM, hoisted out of the loop)
//   for t:  hp = h_{t-1} W_h^T      (one recurrent GEMM, cuBLAS)
//           <cell>_forward_step     (ONE kernel: gates, activations, state update, lengths mask)
//
// and the backward pass (BPTT) as
//
//   for t = T-1 .. 0:  <cell>_backward_step   (ONE kernel: gradients of the preactivations da_t)
//                      dh_rec = da_t W_h      (recurrent GEMM: the gradient reaching h_{t-1})
//   dW_h = Σ_t da_tᵀ h_{t-1},  dW_x = Σ_t da_tᵀ x_t,  dx = da W_x   (GEMMs over all steps at once)
//
// The notes' GRU applies r before its W_hh product, so its steps have two
// phases with a GEMM between them (two kernels); every other cell is one.
//
// Layouts (row-major, per step; the backend passes pointers to step t):
//   xp, hp: (B, G·H), gate g of unit j of sequence b at b·G·H + g·H + j
//   h, c, y, dh, dc: (B, H);  saved: (B, S·H) what the backward pass needs
//   lengths: (B,) int32; step t of sequence b is valid iff t < lengths[b]:
//   a padded step keeps the state, emits y = 0 and passes gradients through.
// Gate orders: LSTM [f, i, o, C] (saved: f, i, o, C~); GRU [z, r, h]
// (saved notes: z, r, h~; reset_after: z, r, h~, n); RNN saved: h.
//
// Launch: 1-d grid, SB_BLOCK threads, ceil(B·H / SB_BLOCK) blocks (grid-stride loops,
// one thread per (b, j)). With SEQBENCH_HOST_BUILD the same functions compile
// for the CPU (kernel_common.cuh), for the host tests.
#include "kernel_common.cuh"

namespace seqbench {

//! The lengths mask of every forward step: a valid step (m) stores h_new as the state and
//! emits it in y; a padded step keeps h_{t-1} and emits 0.
template <typename T, typename A>
SB_HD void store_masked(T* h, T* y, const T* h_prev, int k, A h_new, bool m) {
    h[k] = m ? from_acc<T>(h_new) : h_prev[k];
    y[k] = m ? from_acc<T>(h_new) : from_acc<T>(A(0));
}

// ---- shared pieces of every backward step -------------------------------------------

//! The gradient entering step t for unit (b, j): ds = dL/ds_t = carried + recurrent parts,
//! and dh = m_t (ds + dy_t), the gradient reaching the cell's output h_t (zero on a padded step).
template <typename A> struct Incoming { bool m; A ds, dh; };

template <typename T>
SB_HD Incoming<typename Acc<T>::type> incoming(
    const T* dh_carry, const T* dh_rec, const T* dy, const int* lengths, int b, int k, int t) {
    using A = typename Acc<T>::type;
    Incoming<A> in;
    in.m = step_valid(lengths, b, t);
    in.ds = to_acc(dh_carry[k]) + to_acc(dh_rec[k]);
    in.dh = in.m ? in.ds + to_acc(dy[k]) : A(0);
    return in;
}

//! dL/ds_{t-1} not through the recurrent GEMM: (1 - m_t) ds (a padded step passes it on)
//! plus the cell's own direct part (e.g. GRU's dh (1 - z)).
template <typename A> SB_HD A carried(const Incoming<A>& in, A dh_prev_direct) {
    return (in.m ? A(0) : in.ds) + dh_prev_direct;
}

// ---- RNN: h_t = tanh(W_h h_{t-1} + W_x x_t + b) ---------------------------------------

template <typename T>
SB_HD void rnn_forward_step(const T* xp, const T* hp, const T* h_prev, T* h, T* y, T* saved,
                                 const int* lengths, int t, int B, int H) {
    using A = typename Acc<T>::type;
    for (int k = grid_first(); k < B * H; k += grid_stride()) {
        int b = k / H;
        A h_new = rnn_step(to_acc(xp[k]) + to_acc(hp[k]));
        bool m = step_valid(lengths, b, t);
        saved[k] = from_acc<T>(h_new);
        store_masked(h, y, h_prev, k, h_new, m);
    }
}

template <typename T>
SB_HD void rnn_backward_step(T* dh_carry, const T* dh_rec, const T* dy, const T* saved, T* da,
                                  const int* lengths, int t, int B, int H) {
    using A = typename Acc<T>::type;
    for (int k = grid_first(); k < B * H; k += grid_stride()) {
        Incoming<A> in = incoming(dh_carry, dh_rec, dy, lengths, k / H, k, t);
        da[k] = from_acc<T>(rnn_step_backward(to_acc(saved[k]), in.dh));
        dh_carry[k] = from_acc<T>(carried(in, A(0)));
    }
}

// ---- LSTM -------------------------------------------------------------------------------

template <typename T>
SB_HD void lstm_forward_step(const T* xp, const T* hp, const T* h_prev, const T* c_prev, T* h, T* c, T* y,
                                  T* saved, const int* lengths, int t, int B, int H) {
    using A = typename Acc<T>::type;
    for (int k = grid_first(); k < B * H; k += grid_stride()) {
        int b = k / H, j = k - b * H;
        int g0 = b * 4 * H + j;  // gate f of (b, j); gate g at g0 + g·H
        A a[4];
        for (int g = 0; g < 4; ++g) a[g] = to_acc(xp[g0 + g * H]) + to_acc(hp[g0 + g * H]);
        LstmStep<A> s = lstm_step(a[0], a[1], a[2], a[3], to_acc(c_prev[k]));
        saved[g0] = from_acc<T>(s.f);
        saved[g0 + H] = from_acc<T>(s.i);
        saved[g0 + 2 * H] = from_acc<T>(s.o);
        saved[g0 + 3 * H] = from_acc<T>(s.C_tilde);
        bool m = step_valid(lengths, b, t);
        c[k] = m ? from_acc<T>(s.C) : c_prev[k];
        store_masked(h, y, h_prev, k, s.h, m);
    }
}

template <typename T>
SB_HD void lstm_backward_step(T* dh_carry, T* dc_carry, const T* dh_rec, const T* dy, const T* saved,
                                   const T* c_prev, T* da, const int* lengths, int t, int B, int H) {
    using A = typename Acc<T>::type;
    for (int k = grid_first(); k < B * H; k += grid_stride()) {
        int b = k / H, j = k - b * H;
        int g0 = b * 4 * H + j;
        Incoming<A> in = incoming(dh_carry, dh_rec, dy, lengths, b, k, t);
        A dc = to_acc(dc_carry[k]);
        LstmGrad<A> g = lstm_step_backward(to_acc(saved[g0]), to_acc(saved[g0 + H]), to_acc(saved[g0 + 2 * H]),
                                           to_acc(saved[g0 + 3 * H]), to_acc(c_prev[k]), in.dh,
                                           in.m ? dc : A(0));
        da[g0] = from_acc<T>(g.da_f);
        da[g0 + H] = from_acc<T>(g.da_i);
        da[g0 + 2 * H] = from_acc<T>(g.da_o);
        da[g0 + 3 * H] = from_acc<T>(g.da_C);
        dh_carry[k] = from_acc<T>(carried(in, A(0)));
        dc_carry[k] = from_acc<T>((in.m ? A(0) : dc) + g.dC_prev);
    }
}

// ---- GRU, notes variant (two phases per step) --------------------------------------------

//! Phase 1: z = σ(a_z), r = σ(a_r) with a_g = xp_g + hp_g (hp = h_{t-1} [W_zh; W_rh]^T, (B, 2H)),
//! and r ⊙ h_{t-1}, the input of the phase-2 GEMM.
template <typename T>
SB_HD void gru_notes_gates_step(const T* xp, const T* hp, const T* h_prev, T* rh, T* saved, int B, int H) {
    using A = typename Acc<T>::type;
    for (int k = grid_first(); k < B * H; k += grid_stride()) {
        int b = k / H, j = k - b * H;
        int x0 = b * 3 * H + j, h0 = b * 2 * H + j;
        A z = sigmoid(to_acc(xp[x0]) + to_acc(hp[h0]));
        A r = sigmoid(to_acc(xp[x0 + H]) + to_acc(hp[h0 + H]));
        saved[x0] = from_acc<T>(z);
        saved[x0 + H] = from_acc<T>(r);
        rh[k] = from_acc<T>(gru_notes_reset(r, to_acc(h_prev[k])));
    }
}

//! Phase 2: h~ = tanh(xp_h + hp), hp = (r ⊙ h_{t-1}) W_hh^T (B, H); h_t = (1 - z) h_{t-1} + z h~.
template <typename T>
SB_HD void gru_notes_candidate_step(const T* xp, const T* hp, const T* h_prev, T* h, T* y, T* saved,
                                         const int* lengths, int t, int B, int H) {
    using A = typename Acc<T>::type;
    for (int k = grid_first(); k < B * H; k += grid_stride()) {
        int b = k / H, j = k - b * H;
        int x0 = b * 3 * H + j;
        A h_tilde = gru_notes_candidate(to_acc(xp[x0 + 2 * H]) + to_acc(hp[k]));
        A h_new = gru_update(to_acc(saved[x0]), to_acc(h_prev[k]), h_tilde);
        saved[x0 + 2 * H] = from_acc<T>(h_tilde);
        bool m = step_valid(lengths, b, t);
        store_masked(h, y, h_prev, k, h_new, m);
    }
}

//! Backward phase 1: da_z and da_h (into da (B, 3H) slots z and h) and dh_{t-1}'s direct part dh (1 - z).
template <typename T>
SB_HD void gru_notes_backward_step_1(T* dh_carry, const T* dh_rec, const T* dy, const T* saved,
                                          const T* h_prev, T* da, const int* lengths, int t, int B, int H) {
    using A = typename Acc<T>::type;
    for (int k = grid_first(); k < B * H; k += grid_stride()) {
        int b = k / H, j = k - b * H;
        int x0 = b * 3 * H + j;
        Incoming<A> in = incoming(dh_carry, dh_rec, dy, lengths, b, k, t);
        GruGrad<A> g = gru_notes_backward_1(to_acc(saved[x0]), to_acc(saved[x0 + 2 * H]), to_acc(h_prev[k]), in.dh);
        da[x0] = from_acc<T>(g.da_z);
        da[x0 + 2 * H] = from_acc<T>(g.da_h);
        dh_carry[k] = from_acc<T>(carried(in, g.dh_prev));
    }
}

//! Backward phase 2, given d_rh = da_h W_hh (B, H): da_r (slot r of da) and dh_{t-1} += d_rh r.
template <typename T>
SB_HD void gru_notes_backward_step_2(T* dh_carry, const T* d_rh, const T* saved, const T* h_prev, T* da,
                                          int B, int H) {
    using A = typename Acc<T>::type;
    for (int k = grid_first(); k < B * H; k += grid_stride()) {
        int b = k / H, j = k - b * H;
        int x0 = b * 3 * H + j;
        GruResetGrad<A> g = gru_notes_backward_2(to_acc(saved[x0 + H]), to_acc(h_prev[k]), to_acc(d_rh[k]));
        da[x0 + H] = from_acc<T>(g.da_r);
        dh_carry[k] = from_acc<T>(to_acc(dh_carry[k]) + g.dh_prev);
    }
}

// ---- GRU, reset_after variant (cuDNN / PyTorch) -------------------------------------------

//! a_z = xp_z + hp_z + b_zh, a_r = xp_r + hp_r + b_rh, n = hp_h + b_hh (hp = h_{t-1} W_h^T, (B, 3H));
//! h~ = tanh(xp_h + r ⊙ n); h_t = (1 - z) h_{t-1} + z h~. xp holds the x-side biases b_*x.
template <typename T>
SB_HD void gru_reset_after_step(const T* xp, const T* hp, const T* b_h, const T* h_prev, T* h, T* y,
                                     T* saved, const int* lengths, int t, int B, int H) {
    using A = typename Acc<T>::type;
    for (int k = grid_first(); k < B * H; k += grid_stride()) {
        int b = k / H, j = k - b * H;
        int g0 = b * 3 * H + j, s0 = b * 4 * H + j;
        A z = sigmoid(to_acc(xp[g0]) + to_acc(hp[g0]) + to_acc(b_h[j]));
        A r = sigmoid(to_acc(xp[g0 + H]) + to_acc(hp[g0 + H]) + to_acc(b_h[j + H]));
        A n = to_acc(hp[g0 + 2 * H]) + to_acc(b_h[j + 2 * H]);
        A h_tilde = gru_reset_after_candidate(to_acc(xp[g0 + 2 * H]), r, n);
        A h_new = gru_update(z, to_acc(h_prev[k]), h_tilde);
        saved[s0] = from_acc<T>(z);
        saved[s0 + H] = from_acc<T>(r);
        saved[s0 + 2 * H] = from_acc<T>(h_tilde);
        saved[s0 + 3 * H] = from_acc<T>(n);
        bool m = step_valid(lengths, b, t);
        store_masked(h, y, h_prev, k, h_new, m);
    }
}

//! Backward: dax = [da_z, da_r, da_h] (x side: W_*x, b_*x, dx) and dah = [da_z, da_r, dn]
//! (h side: W_*h, b_*h, the recurrent GEMM), both (B, 3H).
template <typename T>
SB_HD void gru_reset_after_backward_step(T* dh_carry, const T* dh_rec, const T* dy, const T* saved,
                                              const T* h_prev, T* dax, T* dah, const int* lengths, int t, int B,
                                              int H) {
    using A = typename Acc<T>::type;
    for (int k = grid_first(); k < B * H; k += grid_stride()) {
        int b = k / H, j = k - b * H;
        int g0 = b * 3 * H + j, s0 = b * 4 * H + j;
        Incoming<A> in = incoming(dh_carry, dh_rec, dy, lengths, b, k, t);
        GruGrad<A> g = gru_reset_after_backward(to_acc(saved[s0]), to_acc(saved[s0 + H]), to_acc(saved[s0 + 3 * H]),
                                                to_acc(saved[s0 + 2 * H]), to_acc(h_prev[k]), in.dh);
        dax[g0] = dah[g0] = from_acc<T>(g.da_z);
        dax[g0 + H] = dah[g0 + H] = from_acc<T>(g.da_r);
        dax[g0 + 2 * H] = from_acc<T>(g.da_h);
        dah[g0 + 2 * H] = from_acc<T>(g.dn);
        dh_carry[k] = from_acc<T>(carried(in, g.dh_prev));
    }
}

}  // namespace seqbench

// ---- exported kernels: <name>_f32, <name>_f64 ------------------------------------------------

#define SB_RNN_CELL_KERNELS(T, S)                                                                                    \
    SB_EXPORT void rnn_forward_step_##S(const T* xp, const T* hp, const T* h_prev, T* h, T* y,          \
                                                    T* saved, const int* lengths, int t, int B, int H) {             \
        seqbench::rnn_forward_step<T>(xp, hp, h_prev, h, y, saved, lengths, t, B, H);                                \
    }                                                                                                                \
    SB_EXPORT void rnn_backward_step_##S(T* dh_carry, const T* dh_rec, const T* dy, const T* saved,     \
                                                     T* da, const int* lengths, int t, int B, int H) {               \
        seqbench::rnn_backward_step<T>(dh_carry, dh_rec, dy, saved, da, lengths, t, B, H);                           \
    }                                                                                                                \
    SB_EXPORT void lstm_forward_step_##S(const T* xp, const T* hp, const T* h_prev, const T* c_prev,    \
                                                     T* h, T* c, T* y, T* saved, const int* lengths, int t, int B,   \
                                                     int H) {                                                        \
        seqbench::lstm_forward_step<T>(xp, hp, h_prev, c_prev, h, c, y, saved, lengths, t, B, H);                    \
    }                                                                                                                \
    SB_EXPORT void lstm_backward_step_##S(T* dh_carry, T* dc_carry, const T* dh_rec, const T* dy,       \
                                                      const T* saved, const T* c_prev, T* da, const int* lengths,    \
                                                      int t, int B, int H) {                                         \
        seqbench::lstm_backward_step<T>(dh_carry, dc_carry, dh_rec, dy, saved, c_prev, da, lengths, t, B, H);        \
    }                                                                                                                \
    SB_EXPORT void gru_notes_gates_step_##S(const T* xp, const T* hp, const T* h_prev, T* rh,           \
                                                        T* saved, int B, int H) {                                    \
        seqbench::gru_notes_gates_step<T>(xp, hp, h_prev, rh, saved, B, H);                                          \
    }                                                                                                                \
    SB_EXPORT void gru_notes_candidate_step_##S(const T* xp, const T* hp, const T* h_prev, T* h, T* y,  \
                                                            T* saved, const int* lengths, int t, int B, int H) {     \
        seqbench::gru_notes_candidate_step<T>(xp, hp, h_prev, h, y, saved, lengths, t, B, H);                        \
    }                                                                                                                \
    SB_EXPORT void gru_notes_backward_step_1_##S(T* dh_carry, const T* dh_rec, const T* dy,             \
                                                             const T* saved, const T* h_prev, T* da,                 \
                                                             const int* lengths, int t, int B, int H) {              \
        seqbench::gru_notes_backward_step_1<T>(dh_carry, dh_rec, dy, saved, h_prev, da, lengths, t, B, H);           \
    }                                                                                                                \
    SB_EXPORT void gru_notes_backward_step_2_##S(T* dh_carry, const T* d_rh, const T* saved,            \
                                                             const T* h_prev, T* da, int B, int H) {                 \
        seqbench::gru_notes_backward_step_2<T>(dh_carry, d_rh, saved, h_prev, da, B, H);                            \
    }                                                                                                                \
    SB_EXPORT void gru_reset_after_step_##S(const T* xp, const T* hp, const T* b_h, const T* h_prev,    \
                                                        T* h, T* y, T* saved, const int* lengths, int t, int B,      \
                                                        int H) {                                                     \
        seqbench::gru_reset_after_step<T>(xp, hp, b_h, h_prev, h, y, saved, lengths, t, B, H);                       \
    }                                                                                                                \
    SB_EXPORT void gru_reset_after_backward_step_##S(T* dh_carry, const T* dh_rec, const T* dy,         \
                                                                 const T* saved, const T* h_prev, T* dax, T* dah,    \
                                                                 const int* lengths, int t, int B, int H) {          \
        seqbench::gru_reset_after_backward_step<T>(dh_carry, dh_rec, dy, saved, h_prev, dax, dah, lengths, t, B, H); \
    }

SB_FOR_TYPES(SB_RNN_CELL_KERNELS)
