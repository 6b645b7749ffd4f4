// kiln/gemm.hpp — the layers' matrix products, C = op(A) op(B), split across the model's threads.
//
// Eigen's own `c.noalias() = a * b` would do the arithmetic just as well; what differs is how
// the work is shared and where the packing buffers live (docs/performance.md has the figures):
//  - Eigen's threaded product packs blocks that every thread then reads, and synchronises on
//    them several times per product. Here each thread computes its own slice of C from its own
//    packed copies: one fork and one join per product, and no cache line passes between cores
//    until the join. On a shared host whose cores are sometimes far apart, that is the
//    difference between 150 and 270 GFLOP/s at W1's shapes. When the inner dimension is at least
//    twice both sides of C (W1's first layer), each thread takes a share of the sum instead, and
//    the partial results are added after one barrier: each thread then reads the weight rows
//    that its own share of the update step wrote, all but a few where the shares meet.
//  - Eigen allocates its packing buffers on every product. glibc may give large blocks back to
//    the kernel when they are freed, and the next product then page-faults through fresh memory
//    (3x slower at W1's shapes). Here each thread keeps its buffers for as long as it lives, so
//    a training step allocates nothing.
// Each slice is Eigen's one-thread blocked product (its packing, kernel and block sizes), with C
// zeroed a block at a time as the kernel reaches it (see multiply_into in gemm.cpp).
#pragma once

#include "kiln/tensor.hpp"

namespace kiln {

enum class Operand { AsIs, Transposed };

// C = op(A) op(B), overwriting C. op(A) is [m, k], op(B) is [k, n], C is [m, n]; C must not
// overlap A or B. Runs on the calling thread's OpenMP team when the product is large enough
// (kMinMultiplyAddsPerThread each), otherwise on the calling thread alone.
void gemm(ConstMatrixMap a, Operand op_a, ConstMatrixMap b, Operand op_b, MatrixMap c);

// Below this many multiply-adds per thread, waking another thread costs more than it saves.
inline constexpr int64_t kMinMultiplyAddsPerThread = 1 << 16;

}  // namespace kiln
