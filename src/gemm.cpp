// gemm(): one slice of C per thread (or, for a long inner dimension, one share of the sum), each a
// one-thread product of Eigen's packing routines and kernel with buffers of its own, or, for a C
// at most 16 columns wide, a short loop of kiln's own.
#include "kiln/gemm.hpp"

#include "kiln/error.hpp"
#include "kiln/parallel.hpp"

#include <algorithm>
#include <numeric>
#include <vector>

namespace kiln {
namespace {

using Eigen::Index;

// Eigen's blocking state for one thread (its block sizes and where packed panels go), with
// packing buffers that grow to the largest product seen and are then reused.
//
// Any thread of the team may take any tile, so each starts with room for the blocks of
// MNIST-sized models' products (1 MB of each operand): the first tile a helper takes from
// another's share then allocates nothing, and neither does a training step.
class ThreadPackingBuffers : public Eigen::internal::level3_blocking<float, float> {
 public:
  static constexpr size_t kInitialFloats = 256 * 1024;
  ThreadPackingBuffers() {
    packed_a_.reserve(kInitialFloats);
    packed_b_.reserve(kInitialFloats);
  }

  // Block sizes for a row-major [m, n] result with inner dimension k, chosen as Eigen chooses
  // them for one thread. Eigen computes a row-major product as the column-major C^T = B^T A^T,
  // so its rows ("mc") are our columns and its columns ("nc") our rows.
  void prepare(Index m, Index n, Index k) {
    m_mc = n;
    m_nc = m;
    m_kc = k;
    Eigen::internal::computeProductBlockingSizes<float, float, 1>(m_kc, m_mc, m_nc, Index{1});
    grow(packed_a_, m_kc * m_mc);
    grow(packed_b_, m_kc * m_nc);
    m_blockA = packed_a_.data();
    m_blockB = packed_b_.data();
  }

 private:
  using Buffer = std::vector<float, CacheLineAllocator<float>>;
  static void grow(Buffer& buffer, Index size) {
    if (buffer.size() < static_cast<size_t>(size)) buffer.resize(static_cast<size_t>(size));
  }
  Buffer packed_a_;
  Buffer packed_b_;
};

// One per thread: the model's team and each pipeline thread keep their own for their lifetime.
thread_local ThreadPackingBuffers thread_buffers;

// A matrix operand as Eigen's kernel takes it: a pointer, a leading dimension and a storage
// order. op(X) = X^T of a row-major X is the same memory read as column-major.
struct MatrixOperand {
  const float* data;
  Index stride;
  bool column_major;
  // The operand starting at logical row `row` and column `column`.
  const float* at(Index row, Index column) const {
    return column_major ? data + column * stride + row : data + row * stride + column;
  }
};

#ifdef EIGEN_USE_BLAS
// Built with KILN_GEMM=openblas, Eigen's product is one sgemm call, which adds to C.
template <int OrderA, int OrderB>
void multiply_into(MatrixOperand a, MatrixOperand b, float* c, Index c_stride, Index m, Index k, Index n) {
  for (Index row = 0; row < m; ++row) std::fill_n(c + row * c_stride, n, 0.0f);
  thread_buffers.prepare(m, n, k);
  Eigen::internal::general_matrix_matrix_product<Index, float, OrderA, false, float, OrderB, false, Eigen::RowMajor, 1>::run(
      m, n, k, a.data, a.stride, b.data, b.stride, c, 1, c_stride, 1.0f, thread_buffers, nullptr);
}
#else
// Eigen's kernel adds its products into C: for each panel of C it loads the values, adds, and
// stores. On the kernel's first pass over a block of C (the first block of the sum) C holds
// nothing yet, so it is handed C through this mapper, whose loads return zeros: the kernel then
// writes C without reading it, and C needs no zeroing beforehand. Adding to zero is exact, so
// the results are the same bits as zeroing C first. The kernel reaches C only through the
// mapper's members below (Eigen 3.4's GeneralBlockPanelKernel.h): whole packets through a
// LinearMapper, partial ones through gatherPacket / scatterPacket, single floats as res(i, j) += x.
using ResultMapper = Eigen::internal::blas_data_mapper<float, Index, Eigen::ColMajor, Eigen::Unaligned, 1>;

class FirstPassResultMapper {
 public:
  class LinearMapper : public ResultMapper::LinearMapper {
   public:
    using ResultMapper::LinearMapper::LinearMapper;
    template <class Packet>
    Packet loadPacket(Index) const { return Eigen::internal::pset1<Packet>(0.0f); }
  };
  // What res(i, j) += x becomes: res(i, j) = x.
  struct Overwrite {
    float& value;
    void operator+=(float x) const { value = x; }
  };

  explicit FirstPassResultMapper(const ResultMapper& c) : c_(c) {}
  FirstPassResultMapper getSubMapper(Index i, Index j) const { return FirstPassResultMapper(c_.getSubMapper(i, j)); }
  LinearMapper getLinearMapper(Index i, Index j) const { return LinearMapper(&c_(i, j)); }
  Overwrite operator()(Index i, Index j) const { return {c_(i, j)}; }
  template <class Packet>
  Packet gatherPacket(Index, Index) const { return Eigen::internal::pset1<Packet>(0.0f); }
  template <class Packet>
  void scatterPacket(Index i, Index j, const Packet& packet) const { c_.scatterPacket(i, j, packet); }

 private:
  ResultMapper c_;
};

// Eigen's one-thread blocked product, written out: pack a block of each operand, then run Eigen's
// kernel over them, which adds its results to C. The one change from Eigen's own loop is that C
// is never zeroed: the first block of the sum writes it (FirstPassResultMapper, above). Zeroing
// it is a pass over C for nothing, and zeroing a whole slice at once sends it out to L3 and back
// whenever it is larger than L2, as the weight gradients of a 1024-wide layer are (4 MB).
//
// Eigen computes the row-major C = A B as the column-major C^T = B^T A^T, so its "rows" are our
// columns: its left operand is B^T, its right operand A^T, and its (i, j) block of C^T is our
// block of rows j.., columns i...
template <int OrderA, int OrderB>
void multiply_into(MatrixOperand a, MatrixOperand b, float* c, Index c_stride, Index m, Index k, Index n) {
  using namespace Eigen::internal;
  constexpr int kLhsOrder = OrderB == Eigen::RowMajor ? Eigen::ColMajor : Eigen::RowMajor;  // B^T
  constexpr int kRhsOrder = OrderA == Eigen::RowMajor ? Eigen::ColMajor : Eigen::RowMajor;  // A^T
  using Traits = gebp_traits<float, float>;
  using LhsMapper = const_blas_data_mapper<float, Index, kLhsOrder>;
  using RhsMapper = const_blas_data_mapper<float, Index, kRhsOrder>;
  const LhsMapper lhs(b.data, b.stride);
  const RhsMapper rhs(a.data, a.stride);
  const ResultMapper result(c, c_stride, 1);
  gemm_pack_lhs<float, Index, LhsMapper, Traits::mr, Traits::LhsProgress, typename Traits::LhsPacket4Packing, kLhsOrder> pack_lhs;
  gemm_pack_rhs<float, Index, RhsMapper, Traits::nr, kRhsOrder> pack_rhs;
  gebp_kernel<float, float, Index, ResultMapper, Traits::mr, Traits::nr, false, false> kernel;
  gebp_kernel<float, float, Index, FirstPassResultMapper, Traits::mr, Traits::nr, false, false> first_pass_kernel;

  thread_buffers.prepare(m, n, k);
  const Index rows = n, columns = m, depth = k;  // in Eigen's column-major terms
  const Index kc = thread_buffers.kc(), mc = std::min(rows, thread_buffers.mc()), nc = std::min(columns, thread_buffers.nc());
  float* const packed_lhs = thread_buffers.blockA();
  float* const packed_rhs = thread_buffers.blockB();
  // As in Eigen: a single block of A^T, when it all fits, is packed once for all blocks of B^T.
  const bool pack_rhs_once = mc != rows && kc == depth && nc == columns;
  for (Index i = 0; i < rows; i += mc) {
    const Index block_rows = std::min(i + mc, rows) - i;
    for (Index p = 0; p < depth; p += kc) {
      const Index block_depth = std::min(p + kc, depth) - p;
      pack_lhs(packed_lhs, lhs.getSubMapper(i, p), block_depth, block_rows);
      for (Index j = 0; j < columns; j += nc) {
        const Index block_columns = std::min(j + nc, columns) - j;
        if (!pack_rhs_once || i == 0) pack_rhs(packed_rhs, rhs.getSubMapper(p, j), block_depth, block_columns);
        if (p == 0) {
          first_pass_kernel(FirstPassResultMapper(result.getSubMapper(i, j)), packed_lhs, packed_rhs, block_rows, block_depth,
                            block_columns, 1.0f);
        } else {
          kernel(result.getSubMapper(i, j), packed_lhs, packed_rhs, block_rows, block_depth, block_columns, 1.0f);
        }
      }
    }
  }
}
#endif

// A C at most kNarrowWidth columns wide (a classifier's 10 outputs, a first convolution's
// filters) is one vector of floats per row. Eigen's kernel spends most of its time there packing
// A and handling a partial panel, so such products take this loop instead: B is copied into rows
// padded to one vector, and each group of 8 rows of C accumulates in 8 vector registers, one
// multiply-add per row for each k. Eight rows rather than fewer because a multiply-add's result is
// ready only some cycles later: 8 independent sums keep the unit busy. (A GCC vector type: it
// compiles to whatever vectors the target has.)
//
// B is staged kNarrowDepth rows at a time into a buffer each thread makes once, so a deep product
// (a convolution's weight gradient sums over every pixel of the batch) never grows it: a thread
// that meets its first deep product in the middle of training does not allocate. Between stages
// C holds the running sums, and the next stage adds to them in the same order, so the result is
// the same bits as one pass over all of k.
constexpr Index kNarrowWidth = 16;
constexpr Index kNarrowDepth = 4096;
using NarrowRow = float __attribute__((vector_size(kNarrowWidth * sizeof(float))));
thread_local std::vector<NarrowRow, CacheLineAllocator<NarrowRow>> narrow_b(kNarrowDepth);

// Row i of C as a vector: zeros for the first stage, the running sums for the later ones.
NarrowRow narrow_start(const float* c_row, Index n, bool first_stage) {
  NarrowRow row = {};
  if (!first_stage) {
    for (Index j = 0; j < n; ++j) row[j] = c_row[j];
  }
  return row;
}

void multiply_narrow(MatrixOperand a, MatrixOperand b, float* c, Index c_stride, Index m, Index k, Index n) {
  // A[i, p] is a_data[i * row_step + p * column_step], whichever A's storage order: the hot loop
  // then has no branch on it.
  const Index row_step = a.column_major ? 1 : a.stride, column_step = a.column_major ? a.stride : 1;
  for (Index stage = 0; stage < k; stage += kNarrowDepth) {
    const Index depth = std::min(kNarrowDepth, k - stage);
    const bool first_stage = stage == 0;
    for (Index p = 0; p < depth; ++p) {
      NarrowRow row = {};
      for (Index j = 0; j < n; ++j) row[j] = *b.at(stage + p, j);
      narrow_b[static_cast<size_t>(p)] = row;
    }
    const float* a_data = a.data + stage * column_step;
    constexpr Index kRows = 8;
    Index i = 0;
    for (; i + kRows <= m; i += kRows) {
      NarrowRow sums[kRows];
      for (Index r = 0; r < kRows; ++r) sums[r] = narrow_start(c + (i + r) * c_stride, n, first_stage);
      for (Index p = 0; p < depth; ++p) {
        const NarrowRow b_row = narrow_b[static_cast<size_t>(p)];
        const float* a_column = a_data + i * row_step + p * column_step;
        for (Index r = 0; r < kRows; ++r) sums[r] += a_column[r * row_step] * b_row;
      }
      for (Index r = 0; r < kRows; ++r) {
        for (Index j = 0; j < n; ++j) c[(i + r) * c_stride + j] = sums[r][j];
      }
    }
    for (; i < m; ++i) {  // the last m % 8 rows, one at a time
      NarrowRow sum = narrow_start(c + i * c_stride, n, first_stage);
      for (Index p = 0; p < depth; ++p) sum += a_data[i * row_step + p * column_step] * narrow_b[static_cast<size_t>(p)];
      for (Index j = 0; j < n; ++j) c[i * c_stride + j] = sum[j];
    }
  }
}

// A helper's first tile finds its buffers made (they are thread_local, made on first use).
[[maybe_unused]] const bool buffers_made_as_helpers_start = (prepare_each_helper([] {
  (void)thread_buffers.kc();  // any use makes a thread_local
  (void)narrow_b.size();
}), true);

// C[m, n] = A[m, k] B[k, n] on the calling thread.
void multiply_slice(MatrixOperand a, MatrixOperand b, float* c, Index c_stride, Index m, Index k, Index n) {
  if (m == 0 || n == 0) return;
  if (k == 0) {  // an empty sum: C is zero (and Eigen's blocking has nothing to divide up)
    for (Index row = 0; row < m; ++row) std::fill_n(c + row * c_stride, n, 0.0f);
    return;
  }
  if (n <= kNarrowWidth) return multiply_narrow(a, b, c, c_stride, m, k, n);
  constexpr int kRow = Eigen::RowMajor, kColumn = Eigen::ColMajor;
  if (!a.column_major && !b.column_major) return multiply_into<kRow, kRow>(a, b, c, c_stride, m, k, n);
  if (!a.column_major && b.column_major) return multiply_into<kRow, kColumn>(a, b, c, c_stride, m, k, n);
  if (a.column_major && !b.column_major) return multiply_into<kColumn, kRow>(a, b, c, c_stride, m, k, n);
  return multiply_into<kColumn, kColumn>(a, b, c, c_stride, m, k, n);
}

#ifdef EIGEN_USE_BLAS
// Built with KILN_GEMM=openblas, each product is one sgemm call, and OpenBLAS splits it across its
// own threads.
constexpr bool kSplitAcrossThreads = false;
#else
constexpr bool kSplitAcrossThreads = true;
#endif

Index round_up(Index value, Index multiple) { return (value + multiple - 1) / multiple * multiple; }

// ---- the sum split in two ---------------------------------------------------------------------
//
// For products whose k is at least twice both sides of C (a first Dense layer's forward product
// on 28x28 images: C is 64x128, and k runs over 784 pixels), the sum is cut into kSumSlices slices: each slice's product is a tile
// (the first written straight into C, the others into partial Cs of their own), then C's rows add
// the partials in slice order. The slices depend only on k, so the sum is the same whatever the
// team's size; a second slice would change it, which is why their number is fixed.
//
// Why not split C, as for other shapes: every thread would then read the whole of one operand,
// and in training half of it was last written by the other core. In that first layer's forward
// product each thread would read a column slice of the weights, although the update step and the weight
// gradient's product (split by rows) have each thread write its own rows of them. Split by k,
// each thread reads the weight rows that it updates, and they stay in its core's cache.
//
// The partial C costs m x n floats written and read again, where splitting C would have each
// thread pack its own copy of an m x k operand: k at least twice m and n keeps it small beside
// that copy.
constexpr Index kSplitSumFactor = 2;
constexpr Index kSumSlices = 2;
constexpr Index kSumGranule = 8;  // k per slice in whole steps of the kernel's unrolled loop
thread_local std::vector<float, CacheLineAllocator<float>> partial_sums;  // the calling thread's

void multiply_split_sum(MatrixOperand a, MatrixOperand b, float* c, Index c_stride, Index m, Index k, Index n) {
  const Index slice_depth = round_up((k + kSumSlices - 1) / kSumSlices, kSumGranule);
  if (partial_sums.size() < static_cast<size_t>((kSumSlices - 1) * m * n)) {
    partial_sums.resize(static_cast<size_t>((kSumSlices - 1) * m * n));
  }
  float* const partials = partial_sums.data();  // slice s > 0 at partials + (s - 1) * m * n
  parallel_tiles(kSumSlices, [&](int64_t first_slice, int64_t end_slice) {
    for (Index slice = first_slice; slice < end_slice; ++slice) {
      const Index begin = std::min(k, slice * slice_depth), end = std::min(k, begin + slice_depth);
      const MatrixOperand a_columns{a.at(0, begin), a.stride, a.column_major};
      const MatrixOperand b_rows{b.at(begin, 0), b.stride, b.column_major};
      if (slice == 0) {
        multiply_slice(a_columns, b_rows, c, c_stride, m, end - begin, n);
      } else {
        multiply_slice(a_columns, b_rows, partials + (slice - 1) * m * n, n, m, end - begin, n);
      }
    }
  });
  // C += each partial, in slice order; rows are shared out (each row's sum is the same either way).
  for_each_share(m, m * n >= kParallelMinElements / 4, [&](int64_t row_begin, int64_t row_end) {
    for (Index slice = 1; slice < kSumSlices; ++slice) {
      const float* partial = partials + (slice - 1) * m * n;
      for (Index row = row_begin; row < row_end; ++row) {
        float* c_row = c + row * c_stride;
        const float* partial_row = partial + row * n;
        for (Index j = 0; j < n; ++j) c_row[j] += partial_row[j];
      }
    }
  });
}

// ---- C cut into tiles -------------------------------------------------------------------------
//
// Eigen's kernel works through C in panels: mr of our columns (its rows) by nr of our rows (its
// columns). A full panel sums each element in one order, the last, partial panels in another (two
// accumulators taking alternate k, a different split of the same sum). So tiles are cut at whole
// panels: then each element of C falls in the same kind of panel, and is summed in the same order,
// whichever tiles a thread computes and in however many calls. Column tiles are also whole cache
// lines wide, so no line of C is written by two threads.
using KernelTraits = Eigen::internal::gebp_traits<float, float>;
constexpr Index kRowGranule = KernelTraits::nr;
constexpr Index kColumnGranule = std::lcm(Index{KernelTraits::mr}, Index{16});
constexpr Index kMaxTiles = 8;  // enough for late threads' tiles to be shared out; few enough to pack little twice

void multiply_tiles(MatrixOperand a, MatrixOperand b, float* c, Index c_stride, Index m, Index k, Index n, Index work_tiles) {
  // Split C where it leaves the threads the least to share: by columns when A is the smaller
  // operand (every tile reads all of A and its own columns of B), by rows otherwise.
  const bool split_columns = m < n;
  const Index extent = split_columns ? n : m;
  const Index granule = split_columns ? kColumnGranule : kRowGranule;
  const Index units = (extent + granule - 1) / granule;
  const Index tiles = std::min({units, work_tiles, kMaxTiles});
  if (tiles <= 1) return multiply_slice(a, b, c, c_stride, m, k, n);
  auto multiply_part = [&](Index begin, Index end) {
    if (begin >= end) return;
    if (split_columns) {
      const MatrixOperand b_columns{b.at(0, begin), b.stride, b.column_major};
      multiply_slice(a, b_columns, c + begin, c_stride, m, k, end - begin);
    } else {
      const MatrixOperand a_rows{a.at(begin, 0), a.stride, a.column_major};
      multiply_slice(a_rows, b, c + begin * c_stride, c_stride, end - begin, k, n);
    }
  };
  // Tile t covers units [t * units / tiles, (t + 1) * units / tiles); a range of whole panels is
  // one product. The last, partial panel is always a product of its own: Eigen sums it the same
  // way only when it is handed the same block (it blocks a product by its size).
  const Index whole_panels_end = extent / granule * granule;
  parallel_tiles(tiles, [&](int64_t first_tile, int64_t end_tile) {
    const Index begin = std::min(extent, first_tile * units / tiles * granule);
    const Index end = std::min(extent, end_tile * units / tiles * granule);
    multiply_part(begin, std::min(end, whole_panels_end));
    multiply_part(std::max(begin, whole_panels_end), end);
  });
}

}  // namespace

void gemm(ConstMatrixMap a, Operand op_a, ConstMatrixMap b, Operand op_b, MatrixMap c) {
  const bool transpose_a = op_a == Operand::Transposed, transpose_b = op_b == Operand::Transposed;
  const Index m = transpose_a ? a.cols() : a.rows(), k = transpose_a ? a.rows() : a.cols();
  const Index k_b = transpose_b ? b.cols() : b.rows(), n = transpose_b ? b.rows() : b.cols();
  if (k != k_b || c.rows() != m || c.cols() != n) {
    throw ShapeError("gemm: cannot multiply " + std::to_string(m) + "x" + std::to_string(k) + " by " +
                     std::to_string(k_b) + "x" + std::to_string(n) + " into " + std::to_string(c.rows()) + "x" +
                     std::to_string(c.cols()));
  }
  const MatrixOperand a_operand{a.data(), a.cols(), transpose_a};
  const MatrixOperand b_operand{b.data(), b.cols(), transpose_b};

  // How many tiles the work is worth, whatever the team's size.
  const Index work_tiles = kSplitAcrossThreads ? std::max<Index>(1, m * n * k / kMinMultiplyAddsPerTile) : 1;
  if (work_tiles == 1) return multiply_slice(a_operand, b_operand, c.data(), c.cols(), m, k, n);
  if (k >= kSplitSumFactor * std::max(m, n) && k >= kSumSlices * kSumGranule) {
    return multiply_split_sum(a_operand, b_operand, c.data(), c.cols(), m, k, n);
  }
  multiply_tiles(a_operand, b_operand, c.data(), c.cols(), m, k, n, work_tiles);
}

}  // namespace kiln
