// embedding.cu — word2vec negative sampling and GloVe: loss and gradient in one kernel each.
//
// Both kernels give one warp to one item (a training pair, or a co-occurrence
// entry): lanes split the d embedding dimensions, dot products are warp sums,
// and gradients are scattered into the rows they belong to with atomicAdd,
// since many items share a word (sparse row updates, as word2vec and GloVe
// train). Per-item losses go to a buffer the backend sums (a deterministic,
// pairwise sum; no atomic on the loss).
//
// Launch: SB_BLOCK threads (SB_BLOCK / 32 warps = items per block), ceil(N / warps)
// blocks (warp-stride loops). With SEQBENCH_HOST_BUILD the same functions
// compile for the CPU (kernel_common.cuh: one lane, plain adds), for the host tests.
#include "kernel_common.cuh"

namespace seqbench {

// ---- negative sampling (reference/word2vec.py) ------------------------------------------------
//
// For item n with input vector h_n, positive output word o_n and K noise words w_{n,k}:
//   L_n = -log σ(e_o·h) - Σ_k log σ(-e_w·h)                (the notes' loss, sign slip fixed)
//   dL/d(e_o·h) = -σ(-e_o·h),   dL/d(e_w·h) = σ(e_w·h)
//   dh = Σ_targets c_j e_j,  de_j = c_j h   (c_j the derivatives above, times the cotangent g)
// The input vector is the mean of M rows of E_in (ids < 0 are padding):
//   h = (1/M') Σ_m E_in[in_ids[n, m]]  — skip-gram: M = 1; CBOW: the context window;
// each input row gets dh / M'. Positive rows come from E_out, noise rows from E_neg
// (E_neg = E_out for word ids; the backend passes separate arrays for the
// vector form of the op). Tied matrices: the same array and gradient buffer.
// coef (N, K + 1) is scratch for c_j: lane 0 writes them, every lane reads them
// back for the gradient scatter.
// want_grad: 0 the loss; 1 its gradients; 2 the trainer's update directions (every
// context row gets the whole dh: word2vec's update) per slot, not per word: dE_in
// (N·M, d) row n·M + m, dE_out (N·(K+1), d) row n·(K+1) + j, so a trainer step
// scatters O(N·(M + K)·d) values, never a (V, d) gradient.
template <typename T>
SB_HD void negative_sampling(const T* E_in, const T* E_out, const T* E_neg, const long long* in_ids, int M,
                             const long long* out_ids, const long long* neg_ids, int N, int K, int d, T g, T* loss,
                             T* coef, T* dE_in, T* dE_out, T* dE_neg, int want_grad) {
    using A = typename Acc<T>::type;
    const int lane = lane_id(), lanes = lane_count();
    for (int n = warp_first(); n < N; n += warp_stride()) {
        T* c = coef + (long long)n * (K + 1);
        const long long* in_n = in_ids + (long long)n * M;
        int valid = 0;
        for (int m = 0; m < M; ++m) valid += in_n[m] >= 0;
        A scale = valid > 0 ? A(1) / A(valid) : A(0);
        // h_k = (1/M') Σ_m E_in[id_m, k]: recomputed where needed, M is small
        auto h_at = [&](int k) {
            A s = A(0);
            for (int m = 0; m < M; ++m)
                if (in_n[m] >= 0) s += to_acc(E_in[in_n[m] * d + k]);
            return s * scale;
        };
        auto target_row = [&](int j) {  // j = 0: the positive word; j = 1..K: the noise words
            return j == 0 ? E_out + out_ids[n] * d : E_neg + neg_ids[(long long)n * K + j - 1] * d;
        };
        A loss_n = A(0);
        for (int j = 0; j <= K; ++j) {
            const T* e = target_row(j);
            A s = A(0);
            for (int k = lane; k < d; k += lanes) s += h_at(k) * to_acc(e[k]);
            s = warp_sum(s);
            loss_n += ns_term(s, j == 0);
            if (lane == 0) c[j] = from_acc<T>(to_acc(g) * ns_term_grad(s, j == 0));
        }
        if (lane == 0) loss[n] = from_acc<T>(loss_n);
        if (!want_grad) continue;
        sync_warp();  // c written by lane 0, read by every lane
        for (int k = lane; k < d; k += lanes) {
            A h_k = h_at(k), dh_k = A(0);
            for (int j = 0; j <= K; ++j) {
                A c_j = to_acc(c[j]);
                dh_k += c_j * to_acc(target_row(j)[k]);
                T* dE = want_grad == 2 ? dE_out + ((long long)n * (K + 1) + j) * d
                        : j == 0       ? dE_out + out_ids[n] * d
                                       : dE_neg + neg_ids[(long long)n * K + j - 1] * d;
                atomic_add(dE + k, from_acc<T>(c_j * h_k));
            }
            // want_grad == 2: word2vec's CBOW update, dh to every context row (reference/training.py)
            const A in_scale = want_grad == 2 ? A(1) : scale;
            for (int m = 0; m < M; ++m)
                if (in_n[m] >= 0) {
                    T* dE = want_grad == 2 ? dE_in + ((long long)n * M + m) * d : dE_in + in_n[m] * d;
                    atomic_add(dE + k, from_acc<T>(dh_k * in_scale));
                }
        }
    }
}

// ---- GloVe (reference/glove.py) -----------------------------------------------------------------
//
// Over the nonzero entries (i, j, X_ij) of the co-occurrence matrix:
//   J = ½ Σ f(X_ij) r_ij²,   r_ij = θ_i·e_j + b_i + b'_j - log X_ij,   f(x) = min(1, (x/x_max)^α)
//   q_ij = g f(X_ij) r_ij:   dθ_i += q e_j,  de_j += q θ_i,  db_i += q,  db'_j += q

template <typename T>
SB_HD void glove(const T* theta, const T* e, const T* b, const T* b_prime, const long long* rows,
                      const long long* cols, const T* x, int N, int d, T x_max, T alpha, T g, T* cost, T* d_theta,
                      T* d_e, T* d_b, T* d_b_prime, int want_grad) {
    using A = typename Acc<T>::type;
    const int lane = lane_id(), lanes = lane_count();
    for (int n = warp_first(); n < N; n += warp_stride()) {
        const long long i = rows[n], j = cols[n];
        const T* theta_i = theta + i * d;
        const T* e_j = e + j * d;
        A dot = A(0);
        for (int k = lane; k < d; k += lanes) dot += to_acc(theta_i[k]) * to_acc(e_j[k]);
        dot = warp_sum(dot);
        A x_n = to_acc(x[n]);
        A f = glove_weight(x_n, to_acc(x_max), to_acc(alpha));
        A r = glove_residual(dot, to_acc(b[i]), to_acc(b_prime[j]), x_n);
        if (lane == 0) cost[n] = from_acc<T>(A(0.5) * f * r * r);
        if (!want_grad) continue;
        A q = to_acc(g) * f * r;
        // want_grad == 2: each entry's gradients in its own slot n (a trainer sums them per row)
        const long long gi = want_grad == 2 ? n : i, gj = want_grad == 2 ? n : j;
        for (int k = lane; k < d; k += lanes) {
            atomic_add(d_theta + gi * d + k, from_acc<T>(q * to_acc(e_j[k])));
            atomic_add(d_e + gj * d + k, from_acc<T>(q * to_acc(theta_i[k])));
        }
        if (lane == 0) {
            atomic_add(d_b + gi, from_acc<T>(q));
            atomic_add(d_b_prime + gj, from_acc<T>(q));
        }
    }
}

}  // namespace seqbench

// ---- exported kernels: negative_sampling_<f32|f64>, glove_<f32|f64> ------------------------------
// (f32 and f64 only: the gradients are scattered with atomicAdd.)

#define SB_EMBEDDING_KERNELS(T, S)                                                                                 \
    SB_EXPORT void negative_sampling_##S(                                                                          \
        const T* E_in, const T* E_out, const T* E_neg, const long long* in_ids, int M, const long long* out_ids,   \
        const long long* neg_ids, int N, int K, int d, T g, T* loss, T* coef, T* dE_in, T* dE_out, T* dE_neg,      \
        int want_grad) {                                                                                           \
        seqbench::negative_sampling<T>(E_in, E_out, E_neg, in_ids, M, out_ids, neg_ids, N, K, d, g, loss, coef,    \
                                       dE_in, dE_out, dE_neg, want_grad);                                          \
    }                                                                                                              \
    SB_EXPORT void glove_##S(const T* theta, const T* e, const T* b, const T* b_prime,                 \
                                         const long long* rows, const long long* cols, const T* x, int N, int d,   \
                                         T x_max, T alpha, T g, T* cost, T* d_theta, T* d_e, T* d_b,               \
                                         T* d_b_prime, int want_grad) {                                            \
        seqbench::glove<T>(theta, e, b, b_prime, rows, cols, x, N, d, x_max, alpha, g, cost, d_theta, d_e, d_b,    \
                           d_b_prime, want_grad);                                                                  \
    }

SB_EMBEDDING_KERNELS(float, f32)
SB_EMBEDDING_KERNELS(double, f64)
