// persistent_lstm.cu — persistent small-batch forward kernels: the whole sequence in ONE launch.
//
// For small batches (B ≤ 16) a step is latency-bound: the step-by-step path
// (rnn_cells.cu) pays a GEMM launch and a kernel launch per step and reads
// W_h from global memory every step. Here the recurrent weights stay on chip:
//
//   * block k owns the hidden units j ∈ [k·U, (k+1)·U) and keeps their rows of
//     W_h (all gates: R·U rows of length H) in shared memory for the whole
//     sequence, plus the cell state C of its units (LSTM);
//   * per step it loads h_{t-1} (B × H) into shared memory, computes its rows
//     of h_{t-1} W_h^T (one warp per row, lanes over k, warp-sum reduction),
//     adds the hoisted input projection xp_t, runs the cell math of
//     cell_math.cuh (the same functions as rnn_cells.cu) and writes h_t;
//   * a grid-wide barrier (cooperative_groups::this_grid().sync()) separates
//     steps, since every block needs all of h_t. The notes' GRU needs r before
//     its W_hh product: two phases, two barriers per step.
//
// It writes exactly what the step-by-step path writes (hs, cs, y, saved, rh),
// so the backward pass (rnn_cells.cu) runs on its outputs unchanged.
//
// Launch (backends/cupy/planner.py, PersistentPlanner): cooperative launch
// (cupy RawModule(enable_cooperative_groups=True) → cuLaunchCooperativeKernel),
// grid = ceil(H / U) ≤ #SMs blocks of PERSISTENT_THREADS threads, U = ceil(H / #SMs),
// dynamic shared memory persistent_smem_bytes() =
//     (R·U·B + U·B)·sizeof(A)       row results, on-chip state (A: arithmetic type)
//   + (R + E)·U·H·sizeof(T)         weight rows (E = 1: the notes GRU's W_hh)
//   + B·H·sizeof(T)                 h_{t-1} (or r ⊙ h_{t-1})
// which must fit the device's opt-in shared memory per block. Limits: B ≤
// PERSISTENT_MAX_B, all blocks co-resident (one per SM). Where it does not fit
// or cooperative launch is unavailable, the backend takes the step-by-step path.
//
// The kernel body is split into per-block phases (persistent_init,
// persistent_phase) written with the helpers of kernel_common.cuh, so
// host_harness.cu runs the same code on the CPU, block after block, with the
// grid barrier as the loop boundary.
//
// Layouts as in rnn_cells.cu, for all steps: xp (T, B, G·H), hs/cs (T+1, B, H)
// with hs[0] = h0, cs[0] = c0 on entry, y (T, B, H), saved (T, B, S·H), rh (T, B, H).
#if !defined(SEQBENCH_HOST_BUILD)
#include <cooperative_groups.h>
#endif

#include "kernel_common.cuh"

#define PERSISTENT_THREADS 256
#define PERSISTENT_MAX_B 16

namespace seqbench {

enum CellKind { RNN = 0, LSTM = 1, GRU_NOTES = 2, GRU_RESET_AFTER = 3 };

//! Per cell: G gates in xp, R rows per unit in the (first) recurrent product, S saved slots,
//! E extra rows per unit (the notes GRU's W_hh), PHASES grid-wide steps per time step.
template <int CELL> struct CellShape;
template <> struct CellShape<RNN> { static constexpr int G = 1, R = 1, S = 1, E = 0, PHASES = 1; };
template <> struct CellShape<LSTM> { static constexpr int G = 4, R = 4, S = 4, E = 0, PHASES = 1; };
template <> struct CellShape<GRU_NOTES> { static constexpr int G = 3, R = 2, S = 3, E = 1, PHASES = 2; };
template <> struct CellShape<GRU_RESET_AFTER> { static constexpr int G = 3, R = 3, S = 4, E = 0, PHASES = 1; };

template <typename T> struct PersistentArgs {
    const T* xp;        // (T, B, G·H) hoisted input projections, x-side biases included
    const T* W_h;       // (R·H, H) recurrent weights, row g·H + j
    const T* W_hh;      // (H, H) the notes GRU's W_hh (else unused)
    const T* b_h;       // (R·H,) reset_after's h-side biases (else unused)
    T* hs;              // (T+1, B, H)
    T* cs;              // (T+1, B, H) LSTM (else unused)
    T* y;               // (T, B, H)
    T* saved;           // (T, B, S·H)
    T* rh;              // (T, B, H) notes GRU (else unused)
    const int* lengths;  // (B,)
    int steps, B, H, U;
};

//! The block's shared memory, carved as documented at the top.
template <typename T, int CELL> struct PersistentSmem {
    using A = typename Acc<T>::type;
    using Shape = CellShape<CELL>;
    A* pre;    // (R·U, B): this block's rows of h_{t-1} W_h^T
    A* state;  // (U, B): LSTM C of the owned units; notes GRU: z between the phases
    T* w;      // ((R + E)·U, H): the owned weight rows
    T* v;      // (B, H): h_{t-1}, or r ⊙ h_{t-1}

    SB_HD PersistentSmem(unsigned char* base, int B, int H, int U) {
        pre = reinterpret_cast<A*>(base);
        state = pre + Shape::R * U * B;
        w = reinterpret_cast<T*>(state + U * B);
        v = w + (Shape::R + Shape::E) * U * H;
    }

    static SB_HD long long bytes(int B, int H, int U) {
        return (long long)(Shape::R * U * B + U * B) * sizeof(A) +
               (long long)(Shape::R + Shape::E) * U * H * sizeof(T) + (long long)B * H * sizeof(T);
    }
};

//! out[r·B + b] = Σ_k w[r·H + k] v[b·H + k] for this block's rows r whose unit j0 + r % U < H.
//! One warp per row; each lane keeps B partial sums over its k (k ≡ lane mod 32).
template <typename T>
SB_HD void block_rows_times_vectors(const T* w, int rows, int U, int j0, const T* v, int B, int H,
                                    typename Acc<T>::type* out) {
    using A = typename Acc<T>::type;
    const int lane = lane_id(), lanes = lane_count();
    for (int r = block_warp(); r < rows; r += block_warps()) {
        if (j0 + r % U >= H) continue;  // the last block's padding units
        A acc[PERSISTENT_MAX_B];
        for (int b = 0; b < PERSISTENT_MAX_B; ++b) acc[b] = A(0);
        for (int k = lane; k < H; k += lanes) {
            A wk = to_acc(w[r * H + k]);
#pragma unroll
            for (int b = 0; b < PERSISTENT_MAX_B; ++b)
                if (b < B) acc[b] += wk * to_acc(v[b * H + k]);
        }
#pragma unroll
        for (int b = 0; b < PERSISTENT_MAX_B; ++b) {
            if (b < B) {
                A total = warp_sum(acc[b]);
                if (lane == 0) out[r * B + b] = total;
            }
        }
    }
}

//! A load of data other blocks wrote in this launch (before a grid barrier): on the GPU it
//! bypasses L1 (__ldcg), which is not coherent across SMs.
template <typename T> SB_HD T load_coherent(const T* p) {
#if defined(__CUDA_ARCH__)
    return __ldcg(p);
#else
    return *p;
#endif
}

//! Copy a (B, H) state other blocks wrote into shared memory.
template <typename T> SB_HD void load_state(T* dst, const T* src, int n) {
    for (int k = block_thread(); k < n; k += block_threads()) dst[k] = load_coherent(src + k);
}

//! Before the first step: block `block`'s weight rows (and LSTM cell states) into shared memory.
template <typename T, int CELL> SB_HD void persistent_init(const PersistentArgs<T>& a, unsigned char* smem, int block) {
    using Shape = CellShape<CELL>;
    constexpr int R = Shape::R;
    PersistentSmem<T, CELL> s(smem, a.B, a.H, a.U);
    const int U = a.U, H = a.H, j0 = block * U;
    for (int idx = block_thread(); idx < R * U * H; idx += block_threads()) {
        int r = idx / H, k = idx - r * H, g = r / U, j = j0 + r % U;  // row (g, u): W_h[g·H + j, :]
        if (j < H) s.w[idx] = a.W_h[(g * H + j) * H + k];
    }
    if constexpr (Shape::E > 0) {
        for (int idx = block_thread(); idx < U * H; idx += block_threads()) {
            int u = idx / H, k = idx - u * H;
            if (j0 + u < H) s.w[R * U * H + idx] = a.W_hh[(j0 + u) * H + k];
        }
    }
    if constexpr (CELL == LSTM) {
        for (int idx = block_thread(); idx < U * a.B; idx += block_threads()) {
            int u = idx / a.B, b = idx - u * a.B;
            if (j0 + u < H) s.state[idx] = to_acc(a.cs[b * H + j0 + u]);
        }
    }
    sync_block();
}

//! Phase `phase` of step t for block `block`; a grid-wide barrier follows every phase.
//! Phase 0: the (first) recurrent product and the cell update (notes GRU: z, r, r ⊙ h_{t-1}).
//! Phase 1 (notes GRU): h~ = tanh(W_hh (r ⊙ h_{t-1}) + W_hx x) and h_t.
template <typename T, int CELL>
SB_HD void persistent_phase(const PersistentArgs<T>& a, unsigned char* smem, int block, int t, int phase) {
    using A = typename Acc<T>::type;
    using Shape = CellShape<CELL>;
    constexpr int G = Shape::G, R = Shape::R, S = Shape::S;
    PersistentSmem<T, CELL> s(smem, a.B, a.H, a.U);
    const int B = a.B, H = a.H, U = a.U, j0 = block * U, BH = B * H;
    const T* xp_t = a.xp + (long long)t * B * G * H;
    const T* h_prev = a.hs + (long long)t * BH;
    T* h_next = a.hs + (long long)(t + 1) * BH;
    T* y_t = a.y + (long long)t * BH;
    T* saved_t = a.saved + (long long)t * B * S * H;

    if (phase == 1) {  // notes GRU only
        if constexpr (Shape::PHASES > 1) {
            load_state(s.v, a.rh + (long long)t * BH, BH);
            sync_block();
            block_rows_times_vectors(s.w + R * U * H, U, U, j0, s.v, B, H, s.pre);
            sync_block();
            for (int idx = block_thread(); idx < U * B; idx += block_threads()) {
                int u = idx / B, b = idx - u * B, j = j0 + u;
                if (j >= H) continue;
                int k = b * H + j, x0 = b * G * H + j;
                bool m = step_valid(a.lengths, b, t);
                A hp = to_acc(load_coherent(h_prev + k));  // s.v holds r ⊙ h_{t-1}: re-read h_{t-1}
                A h_tilde = gru_notes_candidate(to_acc(xp_t[x0 + 2 * H]) + s.pre[u * B + b]);
                A h_new = gru_update(s.state[idx], hp, h_tilde);
                saved_t[x0 + 2 * H] = from_acc<T>(h_tilde);
                h_next[k] = from_acc<T>(m ? h_new : hp);
                y_t[k] = from_acc<T>(m ? h_new : A(0));
            }
        }
        return;
    }

    load_state(s.v, h_prev, BH);
    sync_block();
    block_rows_times_vectors(s.w, R * U, U, j0, s.v, B, H, s.pre);
    sync_block();
    for (int idx = block_thread(); idx < U * B; idx += block_threads()) {
        int u = idx / B, b = idx - u * B, j = j0 + u;
        if (j >= H) continue;
        int k = b * H + j, x0 = b * G * H + j, s0 = b * S * H + j;
        bool m = step_valid(a.lengths, b, t);
        A act[R];  // a_g = (x_t W_gx^T + b_gx) + (h_{t-1} W_gh^T): the preactivations
        for (int g = 0; g < R; ++g) act[g] = to_acc(xp_t[x0 + g * H]) + s.pre[(g * U + u) * B + b];
        A hp = to_acc(s.v[k]);
        if constexpr (CELL == RNN) {
            A h_new = rnn_step(act[0]);
            saved_t[s0] = from_acc<T>(h_new);
            h_next[k] = from_acc<T>(m ? h_new : hp);
            y_t[k] = from_acc<T>(m ? h_new : A(0));
        } else if constexpr (CELL == LSTM) {
            A C_prev = s.state[idx];
            LstmStep<A> st = lstm_step(act[0], act[1], act[2], act[3], C_prev);
            saved_t[s0] = from_acc<T>(st.f);
            saved_t[s0 + H] = from_acc<T>(st.i);
            saved_t[s0 + 2 * H] = from_acc<T>(st.o);
            saved_t[s0 + 3 * H] = from_acc<T>(st.C_tilde);
            A C_new = m ? st.C : C_prev;
            s.state[idx] = to_acc(from_acc<T>(C_new));  // rounded as the step-by-step path stores it
            a.cs[(long long)(t + 1) * BH + k] = from_acc<T>(C_new);
            h_next[k] = from_acc<T>(m ? st.h : hp);
            y_t[k] = from_acc<T>(m ? st.h : A(0));
        } else if constexpr (CELL == GRU_RESET_AFTER) {
            A z = sigmoid(act[0] + to_acc(a.b_h[j]));
            A r = sigmoid(act[1] + to_acc(a.b_h[j + H]));
            A n = s.pre[(2 * U + u) * B + b] + to_acc(a.b_h[j + 2 * H]);  // n = W_hh h_{t-1} + b_hh
            A h_tilde = gru_reset_after_candidate(to_acc(xp_t[x0 + 2 * H]), r, n);
            A h_new = gru_update(z, hp, h_tilde);
            saved_t[s0] = from_acc<T>(z);
            saved_t[s0 + H] = from_acc<T>(r);
            saved_t[s0 + 2 * H] = from_acc<T>(h_tilde);
            saved_t[s0 + 3 * H] = from_acc<T>(n);
            h_next[k] = from_acc<T>(m ? h_new : hp);
            y_t[k] = from_acc<T>(m ? h_new : A(0));
        } else {  // GRU_NOTES, phase 0: z, r and r ⊙ h_{t-1} (the input of phase 1's product)
            A z = sigmoid(act[0]);
            A r = sigmoid(act[1]);
            saved_t[s0] = from_acc<T>(z);
            saved_t[s0 + H] = from_acc<T>(r);
            s.state[idx] = to_acc(from_acc<T>(z));
            a.rh[(long long)t * BH + k] = from_acc<T>(gru_notes_reset(r, hp));
        }
    }
}

#if !defined(SEQBENCH_HOST_BUILD)
//! The whole sequence: init, then every phase of every step with a grid-wide barrier after it.
template <typename T, int CELL> __device__ void persistent_forward(const PersistentArgs<T>& a) {
    extern __shared__ __align__(16) unsigned char smem[];
    cooperative_groups::grid_group grid = cooperative_groups::this_grid();
    persistent_init<T, CELL>(a, smem, blockIdx.x);
    for (int t = 0; t < a.steps; ++t) {
        for (int phase = 0; phase < CellShape<CELL>::PHASES; ++phase) {
            persistent_phase<T, CELL>(a, smem, blockIdx.x, t, phase);
            grid.sync();  // this phase's outputs complete before any block reads them
        }
    }
}
#endif

}  // namespace seqbench

// ---- exported kernels: persistent_<cell>_forward_<f32|f64> -----------------------------------------

//! X(name, cell, T, S) for every cell with a persistent kernel: the kernels below, and their host build.
#define SB_FOR_PERSISTENT_CELLS(X, T, S) \
    X(rnn, RNN, T, S) X(lstm, LSTM, T, S) X(gru_notes, GRU_NOTES, T, S) X(gru_reset_after, GRU_RESET_AFTER, T, S)

#if !defined(SEQBENCH_HOST_BUILD)
#define SB_PERSISTENT_KERNEL(NAME, CELL, T, S)                                                                   \
    extern "C" __global__ void __launch_bounds__(PERSISTENT_THREADS)                                             \
        persistent_##NAME##_forward_##S(const T* xp, const T* W_h, const T* W_hh, const T* b_h, T* hs, T* cs,    \
                                        T* y, T* saved, T* rh, const int* lengths, int steps, int B, int H,      \
                                        int U) {                                                                 \
        seqbench::persistent_forward<T, seqbench::CELL>(                                                         \
            {xp, W_h, W_hh, b_h, hs, cs, y, saved, rh, lengths, steps, B, H, U});                                \
    }

#define SB_PERSISTENT_KERNELS(T, S) SB_FOR_PERSISTENT_CELLS(SB_PERSISTENT_KERNEL, T, S)

SB_FOR_TYPES(SB_PERSISTENT_KERNELS)
#endif
