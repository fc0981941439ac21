// skipgram_corpus.cu — skip-gram with negative sampling over the encoded corpus, drawn and trained on the device.
//
// The corpus lives on the device once (word ids `ids` (N,) int32 and the sentence starts `starts` (S+1,)), with
// the keep probabilities `keep` (V,) and the alias table `prob`, `alias` (V,) of the noise distribution
// P_n = U^{3/4}/Z (seqbench/embed/pipeline.py NoiseTable). One launch trains the corpus positions
// [first, last) — a chunk of about a million words — at the learning rate η the trainer gives for the chunk.
//
// Draws: counter-based, so they depend on (seed, epoch, position) alone, never on the launch configuration.
// With key_e = mix(mix(seed + G) ^ (epoch + G)) (mix: splitmix64's finalizer, G = 0x9E3779B97F4A7C15),
//   u(t, s) = top 53 bits of mix(mix(key_e ^ t·G) ^ (s + 1)·H) / 2^53  ∈ [0, 1)    (position t, stream s)
// and, for position t of the corpus (seqbench/embed/pipeline.py's rules, word2vec's):
//   subsampling   t is kept iff u(t, 0) < keep[ids[t]];
//   reach         b_t = 1 + ⌊u(t, 1)·window⌋  ∈ {1..window};
//   window        the context of a kept centre t: the b_t nearest kept positions on each side of t inside t's
//                 sentence (a dropped word does not count; windows never cross sentences), in the order
//                 farthest left … nearest left, nearest right … farthest right (pipeline.offsets' order);
//                 a centre with an empty context trains nothing;
//   noise         K words per window, w_k = alias draw of u(t, 2 + k): x = u·V, column c = min(⌊x⌋, V−1),
//                 w_k = c if x − c < prob[c] else alias[c]  (NoiseTable.draw), shared by the window's pairs.
//
// Update (HogBatch, reference/training.py skipgram_window_step's pairs, each applied as the reference's
// negative_sampling_step with B = 1, one after the other): for each window, its target rows
// e_j = E_out[w_j], j = 0 (the centre o) .. K (the noise words), are copied into the warp's shared memory
// (each distinct word once), then for every context word u, in the order above:
//   h = E_in[u];  s_j = h · e_j;  c_0 = −σ(−s_0),  c_j = σ(s_j) (j ≥ 1)
//                                                 (c_j = ∂L/∂s_j of L = −log σ(s_0) − Σ_{j≥1} log σ(−s_j))
//   E_in[u] ← h − η Σ_j c_j e_j                   (to global memory at once)
//   e_j    ← e_j − η c_j h                         (the shared copy: the next pair sees it; a word twice among the
//                                                   targets gets both updates, as scatter_rows sums them)
// and at the window's end E_out[w_j] += e_j − e_j(window start) for each distinct target. Run by one warp, this
// is exactly the reference applied pair by pair (tests/backends/cupy/test_corpus_trainer.py checks it on the
// host build). Across warps the updates are lock-free (hogwild): the E_in and E_out rows are added to with
// atomicAdd, so no update is lost, but a window's copy of its target rows does not see other warps' updates
// made while it trains.
//
// Work: the chunk is cut into `segments` runs of `segment` consecutive positions; a warp takes runs
// warp_first(), + warp_stride(), ... and walks each position by position; its windows may read ids (never
// parameters) of neighbouring runs. Lanes split the d columns of every row (lane-private columns: the shared
// copies need no barrier), dot products are warp sums, and the context scan tests 32 positions per step with
// a ballot. Shared memory per warp: skipgram_corpus_warp_bytes (below), the launch gives
// warps_per_block · that as dynamic shared memory.
//
// Record mode (capacity > 0, tests): every pair trained is written to record[(run·capacity + n)·(5 + K) ...] as
// (centre position, context position, b_t, centre id, context id, w_1 .. w_K), the pairs of a run in the order
// trained (at most `capacity`); counts[run] = the pairs recorded; kept[t − first] = 1 if t was kept, else 0.
//
// SB_CORPUS_MUTANT (host builds by the tests only): a deliberate mistake, to show the tests catch it.
#include "kernel_common.cuh"

#if defined(SEQBENCH_HOST_BUILD)
#include <vector>
#endif

#define SB_MUTANT_STALE_TARGETS 1   // pairs score against the target rows as read at the window's start
#define SB_MUTANT_DROPPED_COUNT 2   // dropped words count in the window
#define SB_MUTANT_CROSS_SENTENCE 3  // windows run across sentences (within the chunk)
#define SB_MUTANT_NOISE_PER_PAIR 4  // noise words drawn for every pair, not once per window
#ifndef SB_CORPUS_MUTANT
#define SB_CORPUS_MUTANT 0
#endif

namespace seqbench {
namespace corpus {

typedef unsigned long long u64;

#define SB_GOLDEN 0x9E3779B97F4A7C15ULL
#define SB_STREAM 0xD1B54A32D192ED03ULL

//! splitmix64's finalizer: a bijection of 64-bit words that mixes every input bit into every output bit.
SB_HD u64 mix64(u64 z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

SB_HD u64 epoch_key(u64 seed, int epoch) { return mix64(mix64(seed + SB_GOLDEN) ^ ((u64)epoch + SB_GOLDEN)); }

//! a·b rounded, never fused with a following add (nvcc contracts a·b − c into an FMA, g++ does not): the draws
//! are then the same bits on the GPU and the host build.
#if defined(__CUDA_ARCH__)
SB_HD double mul_rn(double a, double b) { return __dmul_rn(a, b); }
#else
SB_HD double mul_rn(double a, double b) { return a * b; }
#endif

//! u(t, s) ∈ [0, 1): draw `stream` of corpus position t (53 random bits).
SB_HD double uniform(u64 key, long long t, int stream) {
    u64 h = mix64(mix64(key ^ ((u64)t * SB_GOLDEN)) ^ ((u64)(stream + 1) * SB_STREAM));
    return (double)(h >> 11) * (1.0 / 9007199254740992.0);
}

SB_HD bool kept_at(const int* ids, const double* keep, u64 key, long long t) {
    return uniform(key, t, 0) < keep[ids[t]];
}

SB_HD int reach_at(u64 key, long long t, int window) {
    int b = 1 + (int)mul_rn(uniform(key, t, 1), (double)window);
    return b < window ? b : window;
}

//! Walker's alias draw of noise word k of the window at t (NoiseTable.draw).
SB_HD long long noise_at(const double* prob, const int* alias, long long V, u64 key, long long t, int stream) {
    const double x = mul_rn(uniform(key, t, stream), (double)V);
    long long c = (long long)x;
    if (c > V - 1) c = V - 1;
    return x - (double)c < prob[c] ? c : (long long)alias[c];
}

#if defined(__CUDA_ARCH__)
SB_HD unsigned ballot(bool p) { return __ballot_sync(0xffffffffu, p); }
SB_HD int popcount(unsigned m) { return __popc(m); }
SB_HD unsigned lanes_below() { return (1u << lane_id()) - 1u; }
#else
SB_HD unsigned ballot(bool p) { return p ? 1u : 0u; }
SB_HD int popcount(unsigned m) { return __builtin_popcount(m); }
SB_HD unsigned lanes_below() { return 0u; }
#endif

SB_HD long long align16(long long bytes) { return (bytes + 15) / 16 * 16; }

//! The shared memory one warp uses: h (d), the target rows and their copies at the window's start
//! (2 (K+1) d) in T; the coefficients c_j (K+1) in the arithmetic type; the target ids (K+1) and the context
//! positions (2 window) as long long; the distinct-row index of each target (K+1) as int.
template <typename T> SB_HD long long warp_bytes(int d, int K, int window) {
    using A = typename Acc<T>::type;
    return align16((long long)(2 * K + 3) * d * sizeof(T)) + align16((long long)(K + 1) * sizeof(A)) +
           align16((long long)(K + 1) * 8) + align16((long long)2 * window * 8) + align16((long long)(K + 1) * 4);
}

//! The up-to-`want` kept positions nearest to t on one side (dir = ±1) inside [lo, hi), nearest first, into
//! out; returns how many. Lanes test consecutive positions, a ballot ranks the kept ones.
SB_HD int nearest_kept(const int* ids, const double* keep, u64 key, long long t, int dir, int want, long long lo,
                       long long hi, long long* out) {
    const int lane = lane_id(), lanes = lane_count();
    int found = 0;
    for (long long p = t + dir; found < want && p >= lo && p < hi; p += (long long)dir * lanes) {
        const long long q = p + (long long)dir * lane;
        const bool k = q >= lo && q < hi && (SB_CORPUS_MUTANT == SB_MUTANT_DROPPED_COUNT || kept_at(ids, keep, key, q));
        const unsigned mask = ballot(k);
        const int rank = found + popcount(mask & lanes_below());
        if (k && rank < want) out[rank] = q;
        found += popcount(mask);
    }
    sync_warp();
    return found < want ? found : want;
}

//! The run [p0, ...) starts in sentence s: starts[s] ≤ p0 < starts[s + 1] (the last such s).
SB_HD long long sentence_of(const long long* starts, long long S, long long p0) {
    long long lo = 0, hi = S;  // starts[lo] ≤ p0 < starts[hi]
    while (hi - lo > 1) {
        long long mid = (lo + hi) / 2;
        if (starts[mid] <= p0) lo = mid;
        else hi = mid;
    }
    return lo;
}

template <typename T>
SB_HD void skipgram_corpus(T* E_in, T* E_out, long long V, int d, const int* ids, const long long* starts,
                           long long S, long long first, long long last, long long segment, int segments,
                           const double* keep, const double* prob, const int* alias, int window, int K, u64 seed,
                           int epoch, T lr, long long* record, int* counts, int* kept, long long capacity,
                           unsigned char* shared) {
    using A = typename Acc<T>::type;
    const int lane = lane_id(), lanes = lane_count();
    unsigned char* mine = shared + block_warp() * warp_bytes<T>(d, K, window);
    T* h = reinterpret_cast<T*>(mine);
    T* rows = h + d;                      // (K+1, d): the window's target rows, as trained so far
    T* start = rows + (long long)(K + 1) * d;  // (K+1, d): the same at the window's start
    mine += align16((long long)(2 * K + 3) * d * sizeof(T));
    A* coef = reinterpret_cast<A*>(mine);
    mine += align16((long long)(K + 1) * sizeof(A));
    long long* target = reinterpret_cast<long long*>(mine);
    mine += align16((long long)(K + 1) * 8);
    long long* context = reinterpret_cast<long long*>(mine);  // [0, window): left, [window, 2 window): right
    mine += align16((long long)2 * window * 8);
    int* row_of = reinterpret_cast<int*>(mine);  // target j trains row row_of[j] (its first occurrence)

    const u64 key = epoch_key(seed, epoch);
    const A eta = to_acc(lr);
    const int fields = 5 + K;

    for (int run = warp_first(); run < segments; run += warp_stride()) {
        const long long p0 = first + (long long)run * segment;
        const long long p1 = p0 + segment < last ? p0 + segment : last;
        long long recorded = 0;
        if (p0 < p1) {
            long long s = sentence_of(starts, S, p0);
            for (long long t = p0; t < p1; ++t) {
                while (starts[s + 1] <= t) ++s;
#if SB_CORPUS_MUTANT == SB_MUTANT_CROSS_SENTENCE
                const long long lo = first, hi = last;
#else
                const long long lo = starts[s], hi = starts[s + 1];
#endif
                const bool kept_t = kept_at(ids, keep, key, t);
                if (capacity > 0 && lane == 0) kept[t - first] = kept_t ? 1 : 0;
                if (!kept_t) continue;
                const int b = reach_at(key, t, window);
                const int left = nearest_kept(ids, keep, key, t, -1, b, lo, hi, context);
                const int right = nearest_kept(ids, keep, key, t, +1, b, lo, hi, context + window);
                const int pairs = left + right;
                if (pairs == 0) continue;

                // open(draw): the window's targets (the centre, K noise words of stream 2 + draw·K + k), their
                // distinct rows copied in; close(): each distinct row's change added to E_out
                auto open = [&](int draw) {
                    if (lane == 0) {
                        target[0] = ids[t];
                        for (int k = 0; k < K; ++k) target[1 + k] = noise_at(prob, alias, V, key, t, 2 + draw * K + k);
                        for (int j = 0; j <= K; ++j) {
                            row_of[j] = j;
                            for (int i = 0; i < j; ++i)
                                if (target[i] == target[j]) {
                                    row_of[j] = row_of[i];
                                    break;
                                }
                        }
                    }
                    sync_warp();
                    for (int j = 0; j <= K; ++j) {
                        if (row_of[j] != j) continue;
                        const T* e = E_out + target[j] * d;
                        T *row = rows + (long long)j * d, *row_start = start + (long long)j * d;
                        for (int k = lane; k < d; k += lanes) row[k] = row_start[k] = e[k];
                    }
                };
                auto close = [&]() {
                    for (int j = 0; j <= K; ++j) {
                        if (row_of[j] != j) continue;
                        T* e = E_out + target[j] * d;
                        const T *row = rows + (long long)j * d, *row_start = start + (long long)j * d;
                        for (int k = lane; k < d; k += lanes)
                            atomic_add(e + k, from_acc<T>(to_acc(row[k]) - to_acc(row_start[k])));
                    }
                    sync_warp();  // target, row_of and context are rewritten by the next window
                };

                open(0);
                for (int c = 0; c < pairs; ++c) {
#if SB_CORPUS_MUTANT == SB_MUTANT_NOISE_PER_PAIR
                    if (c > 0) {
                        close();
                        open(c);
                    }
#endif
                    const long long pu = c < left ? context[left - 1 - c] : context[window + c - left];
                    const long long u = ids[pu];
                    T* e_u = E_in + u * d;
                    for (int k = lane; k < d; k += lanes) h[k] = e_u[k];
#if SB_CORPUS_MUTANT == SB_MUTANT_STALE_TARGETS
                    const T* scored = start;
#else
                    const T* scored = rows;
#endif
                    for (int j = 0; j <= K; ++j) {
                        const T* e = scored + (long long)row_of[j] * d;
                        A s_j = A(0);
                        for (int k = lane; k < d; k += lanes) s_j += to_acc(h[k]) * to_acc(e[k]);
                        s_j = warp_sum(s_j);
                        if (lane == 0) coef[j] = ns_term_grad(s_j, j == 0);
                    }
                    sync_warp();  // c_j written by lane 0, read by every lane
                    for (int k = lane; k < d; k += lanes) {
                        const A h_k = to_acc(h[k]);
                        A dh_k = A(0);
                        for (int j = 0; j <= K; ++j) dh_k += coef[j] * to_acc(scored[(long long)row_of[j] * d + k]);
                        for (int j = 0; j <= K; ++j) {
                            T* e = rows + (long long)row_of[j] * d + k;
                            *e = from_acc<T>(to_acc(*e) - eta * (coef[j] * h_k));
                        }
                        atomic_add(e_u + k, from_acc<T>(-(eta * dh_k)));
                    }
                    if (capacity > 0 && recorded < capacity && lane == 0) {
                        long long* r = record + ((long long)run * capacity + recorded) * fields;
                        r[0] = t;
                        r[1] = pu;
                        r[2] = b;
                        r[3] = target[0];
                        r[4] = u;
                        for (int k = 0; k < K; ++k) r[5 + k] = target[1 + k];
                    }
                    ++recorded;
                    sync_warp();  // coef is rewritten by the next pair
                }
                close();
            }
        }
        if (capacity > 0 && lane == 0) counts[run] = (int)(recorded < capacity ? recorded : capacity);
    }
}

}  // namespace corpus
}  // namespace seqbench

// ---- exported kernels: skipgram_corpus_<f32|f64> -----------------------------------------------------------
// Dynamic shared memory: warps per block × skipgram_corpus_warp_bytes. The host build runs one warp with its
// own scratch and exports skipgram_corpus_warp_bytes_<S>(d, K, window) for the launcher's formula's test.

#if defined(SEQBENCH_HOST_BUILD)
#define SB_CORPUS_SHARED(T)                                                                                        \
    std::vector<double> scratch((size_t)(seqbench::corpus::warp_bytes<T>(d, K, window) / 8 + 2));               \
    unsigned char* shared = reinterpret_cast<unsigned char*>(scratch.data());
#define SB_CORPUS_HOST_ONLY(T, S)                                                                                  \
    SB_EXPORT long long skipgram_corpus_warp_bytes_##S(int d, int K, int window) {                                \
        return seqbench::corpus::warp_bytes<T>(d, K, window);                                                     \
    }
#else
#define SB_CORPUS_SHARED(T) extern __shared__ __align__(16) unsigned char shared[];
#define SB_CORPUS_HOST_ONLY(T, S)
#endif

#define SB_CORPUS_KERNELS(T, S)                                                                                    \
    SB_EXPORT void skipgram_corpus_##S(T* E_in, T* E_out, long long V, int d, const int* ids,                     \
                                       const long long* starts, long long S_, long long first, long long last,    \
                                       long long segment, int segments, const double* keep, const double* prob,   \
                                       const int* alias, int window, int K, unsigned long long seed, int epoch,   \
                                       T lr, long long* record, int* counts, int* kept, long long capacity) {     \
        SB_CORPUS_SHARED(T)                                                                                        \
        seqbench::corpus::skipgram_corpus<T>(E_in, E_out, V, d, ids, starts, S_, first, last, segment, segments,   \
                                             keep, prob, alias, window, K, seed, epoch, lr, record, counts, kept,  \
                                             capacity, shared);                                                    \
    }                                                                                                              \
    SB_CORPUS_HOST_ONLY(T, S)

SB_CORPUS_KERNELS(float, f32)
SB_CORPUS_KERNELS(double, f64)
