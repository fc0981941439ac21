// cell_math.cuh — the pointwise math of the notes' cells, once, for the GPU and the CPU.
//
// Every function here is `__host__ __device__`: the CUDA kernels of this folder
// (rnn_cells.cu, persistent_lstm.cu, embedding.cu) call them on the GPU, and
// host_harness.cu compiles them for the CPU so tests/backends/cupy/test_host_kernels.py
// checks them against the NumPy reference (seqbench.reference) without a GPU.
//
// The matrix products (W_h h_{t-1}, W_x x_t) are not here: the backend does
// them as GEMMs; these functions take the *preactivations* (GEMM outputs plus
// biases) and do everything else of one step for one (sequence b, unit j).
// Names follow the notes and reference/{rnn,lstm,gru}.py; the backward
// functions mirror reference step_vjp line by line (the equations read
// bottom-up) and return the gradients of the preactivations `da_*` — what
// the weight gradients are accumulated from as GEMMs over all steps.
//
// Scalars: `A` is the arithmetic type: float or double. Storage types of
// half width (__half, __nv_bfloat16) compute in float: see Acc, to_acc, from_acc.
// The header compiles with nvcc, NVRTC (no standard headers there) and g++.
#pragma once

#if !defined(__CUDACC_RTC__)
#include <math.h>
#endif

#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
#define SB_HD __host__ __device__ __forceinline__
#else
#define SB_HD inline
#endif

#if defined(SEQBENCH_HALF)
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#endif

namespace seqbench {

// ---- scalar types --------------------------------------------------------------------

//! The type a storage type `T` computes in: itself for float/double, float for halves.
template <typename T> struct Acc { using type = T; };

template <typename T> SB_HD typename Acc<T>::type to_acc(T v) { return v; }
template <typename T> SB_HD T from_acc(typename Acc<T>::type v) { return static_cast<T>(v); }

#if defined(SEQBENCH_HALF)
template <> struct Acc<__half> { using type = float; };
template <> struct Acc<__nv_bfloat16> { using type = float; };
template <> SB_HD float to_acc<__half>(__half v) { return __half2float(v); }
template <> SB_HD float to_acc<__nv_bfloat16>(__nv_bfloat16 v) { return __bfloat162float(v); }
template <> SB_HD __half from_acc<__half>(float v) { return __float2half_rn(v); }
template <> SB_HD __nv_bfloat16 from_acc<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }
#endif

// Overloads picking the float or double libm function (NVRTC has no <cmath> std:: overloads).
SB_HD float exp_(float x) { return expf(x); }
SB_HD double exp_(double x) { return exp(x); }
SB_HD float tanh_(float x) { return tanhf(x); }
SB_HD double tanh_(double x) { return tanh(x); }
SB_HD float log_(float x) { return logf(x); }
SB_HD double log_(double x) { return log(x); }
SB_HD float log1p_(float x) { return log1pf(x); }
SB_HD double log1p_(double x) { return log1p(x); }
SB_HD float abs_(float x) { return fabsf(x); }
SB_HD double abs_(double x) { return fabs(x); }
SB_HD float pow_(float x, float y) { return powf(x, y); }
SB_HD double pow_(double x, double y) { return pow(x, y); }

// ---- activations ---------------------------------------------------------------------

//! σ(a) = 1 / (1 + exp(-a)), without overflow for large |a| (as reference.primitives.sigmoid).
template <typename A> SB_HD A sigmoid(A a) {
    A e = exp_(-abs_(a));
    return a >= A(0) ? A(1) / (A(1) + e) : e / (A(1) + e);
}

//! dσ/da from the output s = σ(a): s (1 - s).
template <typename A> SB_HD A dsigmoid_from_output(A s) { return s * (A(1) - s); }

//! d tanh/da from the output t = tanh(a): 1 - t².
template <typename A> SB_HD A dtanh_from_output(A t) { return A(1) - t * t; }

//! log σ(x) = -log(1 + e^{-x}), finite for every x (as reference.word2vec.log_sigmoid).
template <typename A> SB_HD A log_sigmoid(A x) {
    // -logaddexp(0, -x) = -(max(0, -x) + log1p(exp(-|x|)))
    A m = x < A(0) ? -x : A(0);
    return -(m + log1p_(exp_(-abs_(x))));
}

// ---- lengths masking (reference.scan) ----------------------------------------------

//! m_t = 1 where step t of a sequence of length L is valid (t < L), else 0.
SB_HD bool valid_step(int t, int length) { return t < length; }

// ---- vanilla RNN: h_t = tanh(W_h h_{t-1} + W_x x_t + b) -------------------------------

//! Forward: h_t = tanh(a), a = W_h h_{t-1} + W_x x_t + b.
template <typename A> SB_HD A rnn_step(A a) { return tanh_(a); }

//! Backward: da = dh (1 - h²).
template <typename A> SB_HD A rnn_step_backward(A h, A dh) { return dh * dtanh_from_output(h); }

// ---- LSTM (reference/lstm.py) --------------------------------------------------------

template <typename A> struct LstmStep {
    A f, i, o, C_tilde;  // the gates: what the backward pass needs, with C_{t-1}
    A C, tanh_C, h;      // the new state
};

//! One LSTM step from the preactivations a_g = W_gh h_{t-1} + W_gx x_t + b_g:
//!   f_t = σ(a_f), i_t = σ(a_i), o_t = σ(a_o), C~_t = tanh(a_C)
//!   C_t = f_t C_{t-1} + i_t C~_t
//!   h_t = o_t tanh(C_t)
template <typename A> SB_HD LstmStep<A> lstm_step(A a_f, A a_i, A a_o, A a_C, A C_prev) {
    LstmStep<A> s;
    s.f = sigmoid(a_f);
    s.i = sigmoid(a_i);
    s.o = sigmoid(a_o);
    s.C_tilde = tanh_(a_C);
    s.C = s.f * C_prev + s.i * s.C_tilde;
    s.tanh_C = tanh_(s.C);
    s.h = s.o * s.tanh_C;
    return s;
}

template <typename A> struct LstmGrad {
    A da_f, da_i, da_o, da_C;  // dL/d(preactivation) of each gate
    A dC_prev;                 // dL/dC_{t-1} (the part not through W_h)
};

//! Backward of lstm_step, given dh = dL/dh_t and dC = dL/dC_t (from step t+1):
//!   do = dh tanh(C_t);   dC += dh o (1 - tanh²(C_t))
//!   df = dC C_{t-1};     di = dC C~_t;   dC~ = dC i;   dC_{t-1} = dC f
//!   da_g = dg σ'(·) for f, i, o;   da_C = dC~ (1 - C~²)
//! tanh(C_t) is recomputed from the gates: C_t = f C_{t-1} + i C~.
template <typename A>
SB_HD LstmGrad<A> lstm_step_backward(A f, A i, A o, A C_tilde, A C_prev, A dh, A dC) {
    A tanh_C = tanh_(f * C_prev + i * C_tilde);
    A d_o = dh * tanh_C;
    dC = dC + dh * o * dtanh_from_output(tanh_C);
    LstmGrad<A> g;
    g.da_f = dC * C_prev * dsigmoid_from_output(f);
    g.da_i = dC * C_tilde * dsigmoid_from_output(i);
    g.da_o = d_o * dsigmoid_from_output(o);
    g.da_C = dC * i * dtanh_from_output(C_tilde);
    g.dC_prev = dC * f;
    return g;
}

// ---- GRU (reference/gru.py): both variants -------------------------------------------
//
// notes:        z = σ(W_zh h + W_zx x),  r = σ(W_rh h + W_rx x)
//               h~ = tanh(W_hh (r ⊙ h_{t-1}) + W_hx x)
// reset_after:  z = σ(W_zx x + b_zx + W_zh h + b_zh),  r = σ(W_rx x + b_rx + W_rh h + b_rh)
//               n = W_hh h_{t-1} + b_hh,  h~ = tanh(W_hx x + b_hx + r ⊙ n)
// both:         h_t = (1 - z) h_{t-1} + z h~
//
// The notes variant needs r before its W_hh product, so a step has two
// phases: gates (z, r, and r ⊙ h_{t-1} for the second GEMM), then candidate.

//! h_t = (1 - z_t) h_{t-1} + z_t h~_t
template <typename A> SB_HD A gru_update(A z, A h_prev, A h_tilde) { return (A(1) - z) * h_prev + z * h_tilde; }

//! notes, phase 1: r ⊙ h_{t-1}, the input of the W_hh product (z = σ(a_z), r = σ(a_r) by sigmoid()).
template <typename A> SB_HD A gru_notes_reset(A r, A h_prev) { return r * h_prev; }

//! notes, phase 2: h~ = tanh(a_h), a_h = W_hh (r ⊙ h_{t-1}) + W_hx x.
template <typename A> SB_HD A gru_notes_candidate(A a_h) { return tanh_(a_h); }

//! reset_after: h~ = tanh(a_hx + r ⊙ n), a_hx = W_hx x + b_hx, n = W_hh h_{t-1} + b_hh.
template <typename A> SB_HD A gru_reset_after_candidate(A a_hx, A r, A n) { return tanh_(a_hx + r * n); }

template <typename A> struct GruGrad {
    A da_z;        // dL/d(z preactivation)
    A da_r;        // dL/d(r preactivation)
    A da_h;        // dL/d(h~ preactivation): the W_hx side (and notes' W_hh side)
    A dn;          // reset_after: dL/dn = da_h r, the W_hh side; notes: unused
    A dh_prev;     // dL/dh_{t-1}, the parts not through a recurrent GEMM
};

//! notes backward, phase 1 (before the W_hh product), given dh = dL/dh_t:
//!   dz = dh (h~ - h_{t-1});  dh~ = dh z;  dh_{t-1} = dh (1 - z)
//!   da_h = dh~ (1 - h~²);    da_z = dz z (1 - z)
template <typename A> SB_HD GruGrad<A> gru_notes_backward_1(A z, A h_tilde, A h_prev, A dh) {
    GruGrad<A> g;
    A dz = dh * (h_tilde - h_prev);
    A dh_tilde = dh * z;
    g.dh_prev = dh * (A(1) - z);
    g.da_h = dh_tilde * dtanh_from_output(h_tilde);
    g.da_z = dz * dsigmoid_from_output(z);
    g.da_r = A(0);
    g.dn = A(0);
    return g;
}

//! notes backward, phase 2, given d_rh = da_h W_hh (the gradient reaching r ⊙ h_{t-1}):
//!   dr = d_rh h_{t-1};  da_r = dr r (1 - r);  dh_{t-1} += d_rh r   (returns {da_r, d_rh r})
template <typename A> struct GruResetGrad { A da_r, dh_prev; };
template <typename A> SB_HD GruResetGrad<A> gru_notes_backward_2(A r, A h_prev, A d_rh) {
    GruResetGrad<A> g;
    g.da_r = d_rh * h_prev * dsigmoid_from_output(r);
    g.dh_prev = d_rh * r;
    return g;
}

//! reset_after backward, given dh = dL/dh_t:
//!   dz = dh (h~ - h_{t-1});  dh~ = dh z;  dh_{t-1} = dh (1 - z)
//!   da_h = dh~ (1 - h~²);    dn = da_h r;  dr = da_h n
//!   da_r = dr r (1 - r);     da_z = dz z (1 - z)
template <typename A> SB_HD GruGrad<A> gru_reset_after_backward(A z, A r, A n, A h_tilde, A h_prev, A dh) {
    GruGrad<A> g;
    A dz = dh * (h_tilde - h_prev);
    A dh_tilde = dh * z;
    g.dh_prev = dh * (A(1) - z);
    g.da_h = dh_tilde * dtanh_from_output(h_tilde);
    g.dn = g.da_h * r;
    g.da_r = g.da_h * n * dsigmoid_from_output(r);
    g.da_z = dz * dsigmoid_from_output(z);
    return g;
}

// ---- word2vec negative sampling (reference/word2vec.py) ------------------------------

//! One term of the loss for a dot product s: the positive pair adds -log σ(s),
//! a noise word -log σ(-s). Its derivative dℓ/ds: -σ(-s) (positive), σ(s) (noise).
template <typename A> SB_HD A ns_term(A s, bool positive) { return -log_sigmoid(positive ? s : -s); }
template <typename A> SB_HD A ns_term_grad(A s, bool positive) { return positive ? -sigmoid(-s) : sigmoid(s); }

// ---- GloVe (reference/glove.py) ------------------------------------------------------

//! f(x) = min(1, (x / x_max)^α); f(0) = 0.
template <typename A> SB_HD A glove_weight(A x, A x_max, A alpha) {
    if (x <= A(0)) return A(0);
    A w = pow_(x / x_max, alpha);
    return w < A(1) ? w : A(1);
}

//! r_ij = θ_i·e_j + b_i + b'_j - log X_ij, given the dot product.
template <typename A> SB_HD A glove_residual(A dot, A b_i, A b_prime_j, A x) { return dot + b_i + b_prime_j - log_(x); }

}  // namespace seqbench
