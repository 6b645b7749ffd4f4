// Tests of kiln::gemm: every combination of transposed operands, products split by rows, by
// columns and by the inner dimension across threads (and sizes that do not divide evenly),
// against a plain triple loop in double precision; and the shape error.
#include "kiln/gemm.hpp"

#include "kiln/error.hpp"
#include "kiln/parallel.hpp"
#include "kiln/random.hpp"

#include <doctest/doctest.h>

#include "error_message.hpp"

#include <cmath>
#include <cstdint>

namespace {

using namespace kiln;

Matrix random_matrix(int64_t rows, int64_t columns, uint64_t seed) {
  Rng rng(seed);
  Matrix matrix(rows, columns);
  for (int64_t i = 0; i < matrix.size(); ++i) matrix.data()[i] = rng.uniform(-1.0f, 1.0f);
  return matrix;
}

// The largest difference between C and op(A) op(B) computed term by term in double.
double max_error(const Matrix& a, Operand op_a, const Matrix& b, Operand op_b, const Matrix& c) {
  const Matrix a_used = op_a == Operand::Transposed ? Matrix(a.transpose()) : a;
  const Matrix b_used = op_b == Operand::Transposed ? Matrix(b.transpose()) : b;
  double worst = 0.0;
  for (int64_t i = 0; i < c.rows(); ++i) {
    for (int64_t j = 0; j < c.cols(); ++j) {
      double sum = 0.0;
      for (int64_t p = 0; p < a_used.cols(); ++p) sum += static_cast<double>(a_used(i, p)) * b_used(p, j);
      worst = std::max(worst, std::abs(sum - c(i, j)));
    }
  }
  return worst;
}

}  // namespace

TEST_CASE("gemm matches the definition for every operand layout, on one thread and on two") {
  struct Size {
    int64_t m, k, n;
  };
  // Small (one thread), wider than tall (split by columns), taller than wide (split by rows),
  // extents that are not whole multiples of the split's granule (16 columns, 4 rows), and C at most
  // 16 columns wide (the narrow loop: W1's 128x10 layer's products, a row count that 8 does not
  // divide, one column, sixteen), and a product Eigen's blocking cuts into several blocks along k
  // and along C's rows (260x1000x48: 2 x 6 on one thread), so that the kernel's first block of the
  // sum writes C (without reading it) and the later ones add to it; and an inner dimension at least
  // twice both sides of C, which is split between the threads (W1's forward product, 64x784x128;
  // uneven shares of k and of C's rows, 37x1001x29 and 100x600x250; and through the narrow loop,
  // 20x4000x10), and a narrow product deeper than the narrow loop stages at once (a convolution's
  // weight gradient, 24x20000x8); on one, two and three threads.
  const Size sizes[] = {{3, 5, 4},     {64, 300, 200}, {333, 70, 50},   {97, 129, 301},  {786, 64, 128},
                        {64, 128, 10}, {128, 64, 10},  {37, 5, 16},     {9, 3, 1},       {1000, 200, 10},
                        {260, 1000, 48}, {64, 784, 128}, {37, 1001, 29}, {100, 600, 250}, {20, 4000, 10},
                        {24, 20000, 8}};
  const int original_threads = num_threads();
  for (int threads : {1, 2, 3}) {
    set_num_threads(threads);
    for (const Size& size : sizes) {
      for (Operand op_a : {Operand::AsIs, Operand::Transposed}) {
        for (Operand op_b : {Operand::AsIs, Operand::Transposed}) {
          CAPTURE(threads);
          CAPTURE(size.m);
          CAPTURE(size.k);
          CAPTURE(size.n);
          const bool ta = op_a == Operand::Transposed, tb = op_b == Operand::Transposed;
          const Matrix a = random_matrix(ta ? size.k : size.m, ta ? size.m : size.k, 1);
          const Matrix b = random_matrix(tb ? size.n : size.k, tb ? size.k : size.n, 2);
          Matrix c = Matrix::Constant(size.m, size.n, 123.0f);  // overwritten, not added to
          gemm(ConstMatrixMap(a.data(), a.rows(), a.cols()), op_a, ConstMatrixMap(b.data(), b.rows(), b.cols()), op_b,
               MatrixMap(c.data(), c.rows(), c.cols()));
          CHECK(max_error(a, op_a, b, op_b, c) < 1e-4 * static_cast<double>(size.k));
        }
      }
    }
  }
  set_num_threads(original_threads);
}

TEST_CASE("gemm gives the same bits on every run with the same thread count") {
  const Matrix a = random_matrix(64, 784, 3), b = random_matrix(784, 128, 4);
  Matrix first(64, 128), second(64, 128);
  gemm(ConstMatrixMap(a.data(), 64, 784), Operand::AsIs, ConstMatrixMap(b.data(), 784, 128), Operand::AsIs,
       MatrixMap(first.data(), 64, 128));
  gemm(ConstMatrixMap(a.data(), 64, 784), Operand::AsIs, ConstMatrixMap(b.data(), 784, 128), Operand::AsIs,
       MatrixMap(second.data(), 64, 128));
  CHECK(first == second);
}

TEST_CASE("gemm gives the same bits with 1, 2, 3 and 4 threads") {
  // Tiles of C cut by rows and by columns, with partial panels at the end (W2's shapes shrunk, a
  // classifier's narrow C, odd sizes), and sums split in two (W1's forward product, 37x1001x29).
  struct Size {
    int64_t m, k, n;
  };
  const Size sizes[] = {{64, 784, 128}, {784, 64, 128}, {256, 300, 1000}, {1000, 256, 300}, {333, 70, 250},
                        {256, 1024, 10}, {1000, 200, 10}, {37, 1001, 29}, {97, 129, 301},  {130, 96, 1030}};
  const int original_threads = num_threads();
  for (const Size& size : sizes) {
    for (Operand op_a : {Operand::AsIs, Operand::Transposed}) {
      for (Operand op_b : {Operand::AsIs, Operand::Transposed}) {
        CAPTURE(size.m);
        CAPTURE(size.k);
        CAPTURE(size.n);
        const bool ta = op_a == Operand::Transposed, tb = op_b == Operand::Transposed;
        const Matrix a = random_matrix(ta ? size.k : size.m, ta ? size.m : size.k, 5);
        const Matrix b = random_matrix(tb ? size.n : size.k, tb ? size.k : size.n, 6);
        Matrix reference(size.m, size.n);
        for (int threads : {1, 2, 3, 4}) {
          CAPTURE(threads);
          set_num_threads(threads);
          Matrix c(size.m, size.n);
          gemm(ConstMatrixMap(a.data(), a.rows(), a.cols()), op_a, ConstMatrixMap(b.data(), b.rows(), b.cols()), op_b,
               MatrixMap(c.data(), c.rows(), c.cols()));
          if (threads == 1) reference = c;
          CHECK(c == reference);
        }
      }
    }
  }
  set_num_threads(original_threads);
}

TEST_CASE("gemm over an empty inner dimension gives zeros") {
  const Matrix a(3, 0), b(0, 4);
  Matrix c = Matrix::Constant(3, 4, 7.0f);
  gemm(ConstMatrixMap(a.data(), 3, 0), Operand::AsIs, ConstMatrixMap(b.data(), 0, 4), Operand::AsIs, MatrixMap(c.data(), 3, 4));
  CHECK(c.isZero());
}

TEST_CASE("gemm names both shapes when they do not fit") {
  const Matrix a = random_matrix(4, 3, 1), b = random_matrix(5, 2, 2);
  Matrix c(4, 2);
  const std::string message = testing::error_message<ShapeError>([&] {
    gemm(ConstMatrixMap(a.data(), 4, 3), Operand::AsIs, ConstMatrixMap(b.data(), 5, 2), Operand::AsIs,
         MatrixMap(c.data(), 4, 2));
  });
  CHECK(testing::contains(message, "4x3 by 5x2"));
}
