// kiln/gemm.hpp — the layers' matrix products, C = op(A) op(B), shared out to the model's team.
//
// Eigen's own `c.noalias() = a * b` would do the arithmetic just as well; what differs is how
// the work is shared and where the packing buffers live (docs/performance.md, "What makes it fast"):
//  - C is cut into tiles at whole panels of Eigen's kernel (or, for a long inner dimension, the
//    sum into two slices), and the team's threads take whole tiles (parallel.hpp). Each computes
//    its tiles from packed copies of its own: nothing passes between cores until the tiles are
//    done. Tiles depend on the shapes alone, so C comes out the same, to the bit, whatever the
//    team's size.
//  - Eigen allocates its packing buffers on every product. glibc may give large blocks back to
//    the kernel when they are freed, and the next product then page-faults through fresh memory.
//    Here each thread keeps its buffers for as long as it lives, so a training step allocates
//    nothing.
// Each tile is Eigen's one-thread blocked product (its packing, kernel and block sizes), with C
// written by the kernel's first pass rather than zeroed first (see multiply_into in gemm.cpp).
#pragma once

#include "kiln/tensor.hpp"

namespace kiln {

enum class Operand { AsIs, Transposed };

// C = op(A) op(B), overwriting C. op(A) is [m, k], op(B) is [k, n], C is [m, n]; C must not
// overlap A or B. Runs on the calling thread's team when the product is large enough
// (kMinMultiplyAddsPerTile for each tile), otherwise on the calling thread alone.
void gemm(ConstMatrixMap a, Operand op_a, ConstMatrixMap b, Operand op_b, MatrixMap c);

// Below this many multiply-adds, a tile of its own costs more than it saves (waking a thread,
// packing an operand again).
inline constexpr int64_t kMinMultiplyAddsPerTile = 1 << 16;

}  // namespace kiln
