// kernel_common.cuh — what the kernels share beyond the math (which is in cell_math.cuh).
//
// The elementwise and embedding kernels (rnn_cells.cu, embedding.cu) are
// written so that they ALSO compile for the CPU: with SEQBENCH_HOST_BUILD
// defined (host_harness.cu, built with g++ or nvcc), every exported kernel
// becomes a plain `extern "C"` function of the same name and arguments that
// runs all its threads in one loop. tests/backends/cupy/test_host_kernels.py drives the
// backend's own time loop (backends/cupy/cells.py) with NumPy arrays and
// these host functions, so the kernels *and* their orchestration are checked
// against the reference without a GPU. The helpers below are what differs:
//
//   helper               GPU                                    host build
//   grid_first/stride    global thread index / #threads         0 / 1
//   warp_first/stride    global warp index / #warps             0 / 1
//   block_thread/threads thread in the block / blockDim.x       0 / 1
//   block_warp/warps     warp in the block / #warps in it       0 / 1
//   lane_id/count        lane in the warp / 32                  0 / 1
//   warp_sum             butterfly __shfl_xor_sync              identity
//   atomic_add           atomicAdd                              +=
//   sync_warp/block      __syncwarp / __syncthreads             nothing
//
// (The persistent kernel's blocks run one after the other on the host, its
// grid-wide barrier becoming the loop boundary; see host_harness.cu.)
//
// SB_FOR_TYPES(X) instantiates each exported kernel per scalar type: every
// kernel is a template written once, and `X(T, suffix)` emits its wrapper
// `<kernel>_<suffix>` (f32, f64; f16 with SEQBENCH_HALF), the names the backend looks up.
#pragma once

#include "cell_math.cuh"

#if defined(SEQBENCH_HOST_BUILD)
#define SB_EXPORT extern "C" __attribute__((visibility("default")))
#else
#define SB_EXPORT extern "C" __global__
#endif

#if defined(SEQBENCH_HALF) && !defined(SEQBENCH_HOST_BUILD)
#define SB_FOR_TYPES(X) X(float, f32) X(double, f64) X(__half, f16)
#else
#define SB_FOR_TYPES(X) X(float, f32) X(double, f64)
#endif

//! Threads per block of the elementwise kernels (the backend launches ceil(n / SB_BLOCK) blocks).
#define SB_BLOCK 256

namespace seqbench {

#if defined(__CUDA_ARCH__)
SB_HD int grid_first() { return blockIdx.x * blockDim.x + threadIdx.x; }
SB_HD int grid_stride() { return blockDim.x * gridDim.x; }
SB_HD int lane_id() { return threadIdx.x & 31; }
SB_HD int lane_count() { return 32; }
SB_HD int warp_first() { return (blockIdx.x * blockDim.x + threadIdx.x) >> 5; }
SB_HD int warp_stride() { return (blockDim.x * gridDim.x) >> 5; }
SB_HD int block_thread() { return threadIdx.x; }
SB_HD int block_threads() { return blockDim.x; }
SB_HD int block_warp() { return threadIdx.x >> 5; }
SB_HD int block_warps() { return blockDim.x >> 5; }
SB_HD void sync_warp() { __syncwarp(); }
SB_HD void sync_block() { __syncthreads(); }
template <typename A> SB_HD A warp_sum(A v) {
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
    return v;
}
SB_HD void atomic_add(float* p, float v) { atomicAdd(p, v); }
SB_HD void atomic_add(double* p, double v) { atomicAdd(p, v); }
#else
SB_HD int grid_first() { return 0; }
SB_HD int grid_stride() { return 1; }
SB_HD int lane_id() { return 0; }
SB_HD int lane_count() { return 1; }
SB_HD int warp_first() { return 0; }
SB_HD int warp_stride() { return 1; }
SB_HD int block_thread() { return 0; }
SB_HD int block_threads() { return 1; }
SB_HD int block_warp() { return 0; }
SB_HD int block_warps() { return 1; }
SB_HD void sync_warp() {}
SB_HD void sync_block() {}
template <typename A> SB_HD A warp_sum(A v) { return v; }
template <typename T> SB_HD void atomic_add(T* p, T v) { *p = *p + v; }
#endif

//! Sequence b's step t is valid: t < lengths[b] (reference.scan: padded steps keep the state).
SB_HD bool step_valid(const int* lengths, int b, int t) { return valid_step(t, lengths[b]); }

}  // namespace seqbench
