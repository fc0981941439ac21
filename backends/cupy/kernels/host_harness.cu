// host_harness.cu — the kernels' math compiled for the CPU, for tests without a GPU.
//
// Built as a shared library (g++ -x c++, or nvcc) by tests/backends/cupy/test_host_kernels.py and
// loaded with ctypes. It exports two things, for float (_f32) and double (_f64):
//
// 1. cm_*: the pointwise cell math of cell_math.cuh over arrays of n elements,
//    one step of each cell given its preactivations, forward and backward,
//    checked against reference/{rnn,lstm,gru}.py step / step_vjp;
// 2. every kernel of rnn_cells.cu, embedding.cu and skipgram_corpus.cu under its own name and
//    arguments, run as a loop on the CPU (SEQBENCH_HOST_BUILD, see
//    kernel_common.cuh), so the backend's time loop runs on NumPy arrays
//    through them and is checked against the reference end to end;
// 3. the persistent kernels of persistent_lstm.cu as
//    persistent_<cell>_forward_host_<S>(grid, <the kernel's arguments>): each
//    block's phases run one block after the other, the grid barrier being the
//    loop boundary, each block with its own "shared memory"; and
//    persistent_smem_bytes_<cell>_<S>(B, H, U), the shared memory a block needs.
//
// Layout of the cm_* arrays: gates stacked on the leading axis, e.g. a: (4, n)
// for the LSTM's [f, i, o, C] preactivations.
#define SEQBENCH_HOST_BUILD 1

#include <vector>

#include "embedding.cu"
#include "persistent_lstm.cu"
#include "rnn_cells.cu"
#include "skipgram_corpus.cu"

namespace seqbench {
namespace host {

template <typename T> void sigmoid_all(int n, const T* a, T* out) {
    for (int k = 0; k < n; ++k) out[k] = sigmoid(a[k]);
}

template <typename T> void log_sigmoid_all(int n, const T* a, T* out) {
    for (int k = 0; k < n; ++k) out[k] = log_sigmoid(a[k]);
}

template <typename T> void rnn_forward(int n, const T* a, T* h) {
    for (int k = 0; k < n; ++k) h[k] = rnn_step(a[k]);
}

template <typename T> void rnn_backward(int n, const T* h, const T* dh, T* da) {
    for (int k = 0; k < n; ++k) da[k] = rnn_step_backward(h[k], dh[k]);
}

//! a, gates: (4, n) as [f, i, o, C] / [f, i, o, C~].
template <typename T> void lstm_forward(int n, const T* a, const T* C_prev, T* gates, T* C, T* h) {
    for (int k = 0; k < n; ++k) {
        LstmStep<T> s = lstm_step(a[k], a[n + k], a[2 * n + k], a[3 * n + k], C_prev[k]);
        gates[k] = s.f;
        gates[n + k] = s.i;
        gates[2 * n + k] = s.o;
        gates[3 * n + k] = s.C_tilde;
        C[k] = s.C;
        h[k] = s.h;
    }
}

template <typename T>
void lstm_backward(int n, const T* gates, const T* C_prev, const T* dh, const T* dC, T* da, T* dC_prev) {
    for (int k = 0; k < n; ++k) {
        LstmGrad<T> g = lstm_step_backward(gates[k], gates[n + k], gates[2 * n + k], gates[3 * n + k], C_prev[k],
                                           dh[k], dC[k]);
        da[k] = g.da_f;
        da[n + k] = g.da_i;
        da[2 * n + k] = g.da_o;
        da[3 * n + k] = g.da_C;
        dC_prev[k] = g.dC_prev;
    }
}

//! notes phase 1: a: (2, n) [z, r] preactivations -> z, r, r ⊙ h_{t-1}.
template <typename T> void gru_notes_forward_1(int n, const T* a, const T* h_prev, T* z, T* r, T* rh) {
    for (int k = 0; k < n; ++k) {
        z[k] = sigmoid(a[k]);
        r[k] = sigmoid(a[n + k]);
        rh[k] = gru_notes_reset(r[k], h_prev[k]);
    }
}

template <typename T> void gru_notes_forward_2(int n, const T* a_h, const T* z, const T* h_prev, T* h_tilde, T* h) {
    for (int k = 0; k < n; ++k) {
        h_tilde[k] = gru_notes_candidate(a_h[k]);
        h[k] = gru_update(z[k], h_prev[k], h_tilde[k]);
    }
}

template <typename T>
void gru_notes_backward_1(int n, const T* z, const T* h_tilde, const T* h_prev, const T* dh, T* da_z, T* da_h,
                          T* dh_prev) {
    for (int k = 0; k < n; ++k) {
        GruGrad<T> g = seqbench::gru_notes_backward_1(z[k], h_tilde[k], h_prev[k], dh[k]);
        da_z[k] = g.da_z;
        da_h[k] = g.da_h;
        dh_prev[k] = g.dh_prev;
    }
}

template <typename T>
void gru_notes_backward_2(int n, const T* r, const T* h_prev, const T* d_rh, T* da_r, T* dh_prev) {
    for (int k = 0; k < n; ++k) {
        GruResetGrad<T> g = seqbench::gru_notes_backward_2(r[k], h_prev[k], d_rh[k]);
        da_r[k] = g.da_r;
        dh_prev[k] = g.dh_prev;
    }
}

//! a: (3, n) as [z, r] full preactivations and the x side of h~ (W_hx x + b_hx); n_: W_hh h + b_hh.
template <typename T>
void gru_reset_after_forward(int n, const T* a, const T* n_, const T* h_prev, T* z, T* r, T* h_tilde, T* h) {
    for (int k = 0; k < n; ++k) {
        z[k] = sigmoid(a[k]);
        r[k] = sigmoid(a[n + k]);
        h_tilde[k] = gru_reset_after_candidate(a[2 * n + k], r[k], n_[k]);
        h[k] = gru_update(z[k], h_prev[k], h_tilde[k]);
    }
}

//! out: (5, n) as [da_z, da_r, da_h, dn, dh_prev].
template <typename T>
void gru_reset_after_backward(int n, const T* z, const T* r, const T* n_, const T* h_tilde, const T* h_prev,
                              const T* dh, T* out) {
    for (int k = 0; k < n; ++k) {
        GruGrad<T> g = seqbench::gru_reset_after_backward(z[k], r[k], n_[k], h_tilde[k], h_prev[k], dh[k]);
        out[k] = g.da_z;
        out[n + k] = g.da_r;
        out[2 * n + k] = g.da_h;
        out[3 * n + k] = g.dn;
        out[4 * n + k] = g.dh_prev;
    }
}

template <typename T> void ns_terms(int n, const T* s, const int* positive, T* term, T* grad) {
    for (int k = 0; k < n; ++k) {
        term[k] = ns_term(s[k], positive[k] != 0);
        grad[k] = ns_term_grad(s[k], positive[k] != 0);
    }
}

template <typename T>
void glove_terms(int n, const T* dot, const T* b_i, const T* b_prime_j, const T* x, T x_max, T alpha, T* f, T* r) {
    for (int k = 0; k < n; ++k) {
        f[k] = glove_weight(x[k], x_max, alpha);
        r[k] = glove_residual(dot[k], b_i[k], b_prime_j[k], x[k]);
    }
}

//! The persistent kernel's blocks, sequentially: init each, then per step and phase every block.
template <typename T, int CELL> void persistent_forward(int grid, const PersistentArgs<T>& a) {
    long long bytes = (PersistentSmem<T, CELL>::bytes(a.B, a.H, a.U) + 15) / 16 * 16;
    std::vector<double> smem((size_t)(grid * bytes / sizeof(double)));  // double: 8-byte aligned blocks
    auto block_smem = [&](int block) { return reinterpret_cast<unsigned char*>(smem.data()) + block * bytes; };
    for (int block = 0; block < grid; ++block) persistent_init<T, CELL>(a, block_smem(block), block);
    for (int t = 0; t < a.steps; ++t)
        for (int phase = 0; phase < CellShape<CELL>::PHASES; ++phase)
            for (int block = 0; block < grid; ++block) persistent_phase<T, CELL>(a, block_smem(block), block, t, phase);
}

}  // namespace host
}  // namespace seqbench

#define SB_HOST_PERSISTENT(NAME, CELL, T, S)                                                                     \
    SB_EXPORT void persistent_##NAME##_forward_host_##S(int grid, const T* xp, const T* W_h, const T* W_hh,      \
                                                        const T* b_h, T* hs, T* cs, T* y, T* saved, T* rh,       \
                                                        const int* lengths, int steps, int B, int H, int U) {    \
        seqbench::host::persistent_forward<T, seqbench::CELL>(                                                   \
            grid, {xp, W_h, W_hh, b_h, hs, cs, y, saved, rh, lengths, steps, B, H, U});                          \
    }                                                                                                            \
    SB_EXPORT long long persistent_smem_bytes_##NAME##_##S(int B, int H, int U) {                               \
        return seqbench::PersistentSmem<T, seqbench::CELL>::bytes(B, H, U);                                      \
    }

#define SB_HOST_PERSISTENT_ALL(T, S) SB_FOR_PERSISTENT_CELLS(SB_HOST_PERSISTENT, T, S)

SB_FOR_TYPES(SB_HOST_PERSISTENT_ALL)

#define SB_HOST_MATH(T, S)                                                                                          \
    SB_EXPORT void cm_sigmoid_##S(int n, const T* a, T* out) { seqbench::host::sigmoid_all(n, a, out); }            \
    SB_EXPORT void cm_log_sigmoid_##S(int n, const T* a, T* out) { seqbench::host::log_sigmoid_all(n, a, out); }    \
    SB_EXPORT void cm_rnn_forward_##S(int n, const T* a, T* h) { seqbench::host::rnn_forward(n, a, h); }            \
    SB_EXPORT void cm_rnn_backward_##S(int n, const T* h, const T* dh, T* da) {                                     \
        seqbench::host::rnn_backward(n, h, dh, da);                                                                 \
    }                                                                                                               \
    SB_EXPORT void cm_lstm_forward_##S(int n, const T* a, const T* C_prev, T* gates, T* C, T* h) {                  \
        seqbench::host::lstm_forward(n, a, C_prev, gates, C, h);                                                    \
    }                                                                                                               \
    SB_EXPORT void cm_lstm_backward_##S(int n, const T* gates, const T* C_prev, const T* dh, const T* dC, T* da,    \
                                        T* dC_prev) {                                                               \
        seqbench::host::lstm_backward(n, gates, C_prev, dh, dC, da, dC_prev);                                       \
    }                                                                                                               \
    SB_EXPORT void cm_gru_notes_forward_1_##S(int n, const T* a, const T* h_prev, T* z, T* r, T* rh) {              \
        seqbench::host::gru_notes_forward_1(n, a, h_prev, z, r, rh);                                                \
    }                                                                                                               \
    SB_EXPORT void cm_gru_notes_forward_2_##S(int n, const T* a_h, const T* z, const T* h_prev, T* h_tilde, T* h) { \
        seqbench::host::gru_notes_forward_2(n, a_h, z, h_prev, h_tilde, h);                                         \
    }                                                                                                               \
    SB_EXPORT void cm_gru_notes_backward_1_##S(int n, const T* z, const T* h_tilde, const T* h_prev, const T* dh,   \
                                               T* da_z, T* da_h, T* dh_prev) {                                      \
        seqbench::host::gru_notes_backward_1(n, z, h_tilde, h_prev, dh, da_z, da_h, dh_prev);                       \
    }                                                                                                               \
    SB_EXPORT void cm_gru_notes_backward_2_##S(int n, const T* r, const T* h_prev, const T* d_rh, T* da_r,          \
                                               T* dh_prev) {                                                        \
        seqbench::host::gru_notes_backward_2(n, r, h_prev, d_rh, da_r, dh_prev);                                    \
    }                                                                                                               \
    SB_EXPORT void cm_gru_reset_after_forward_##S(int n, const T* a, const T* n_, const T* h_prev, T* z, T* r,      \
                                                  T* h_tilde, T* h) {                                               \
        seqbench::host::gru_reset_after_forward(n, a, n_, h_prev, z, r, h_tilde, h);                                \
    }                                                                                                               \
    SB_EXPORT void cm_gru_reset_after_backward_##S(int n, const T* z, const T* r, const T* n_, const T* h_tilde,    \
                                                   const T* h_prev, const T* dh, T* out) {                          \
        seqbench::host::gru_reset_after_backward(n, z, r, n_, h_tilde, h_prev, dh, out);                            \
    }                                                                                                               \
    SB_EXPORT void cm_ns_terms_##S(int n, const T* s, const int* positive, T* term, T* grad) {                      \
        seqbench::host::ns_terms(n, s, positive, term, grad);                                                       \
    }                                                                                                               \
    SB_EXPORT void cm_glove_terms_##S(int n, const T* dot, const T* b_i, const T* b_prime_j, const T* x, T x_max,   \
                                      T alpha, T* f, T* r) {                                                        \
        seqbench::host::glove_terms(n, dot, b_i, b_prime_j, x, x_max, alpha, f, r);                                 \
    }

SB_HOST_MATH(float, f32)
SB_HOST_MATH(double, f64)
