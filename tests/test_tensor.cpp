// Tests of kiln::Shape and kiln::Tensor: sizes and printing, the rank limit, the errors that name
// both counts or shapes, the capacity-keeping resize the training step relies on, and the
// row-major layout that the Eigen views and slice_rows expose.
#include "kiln/tensor.hpp"

#include "kiln/error.hpp"

#include <doctest/doctest.h>

#include "error_message.hpp"

#include <cstdint>
#include <span>
#include <utility>
#include <string>
#include <vector>

namespace {

using kiln::testing::contains;

using kiln::Shape;
using kiln::ResourceError;
using kiln::ShapeError;
using kiln::Tensor;

// The message of the ShapeError `action` throws; fails the test if it throws nothing.
template <class Action>
std::string shape_error_message(Action action) {
  try {
    action();
  } catch (const ShapeError& error) {
    return error.what();
  }
  FAIL("expected a ShapeError");
  return "";
}


// 0, 1, 2, ... count - 1
std::vector<float> counting(int64_t count) {
  std::vector<float> values(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) values[static_cast<size_t>(i)] = static_cast<float>(i);
  return values;
}

}  // namespace

// ---- Shape ----------------------------------------------------------------------------------------

TEST_CASE("Shape: rank, axes and element_count") {
  const Shape image{28, 28};
  CHECK(image.rank() == 2);
  CHECK(image[0] == 28);
  CHECK(image[1] == 28);
  CHECK(image.element_count() == 784);
  CHECK(Shape{64, 3, 5}.element_count() == 64 * 3 * 5);
  CHECK(Shape{7, 0, 3}.element_count() == 0);
  // The empty product: a scalar has one element.
  CHECK(Shape{}.rank() == 0);
  CHECK(Shape{}.element_count() == 1);
}

TEST_CASE("Shape: str joins the axes with x, keras_str prints a batch of None") {
  CHECK(Shape{28, 28}.str() == "28x28");
  CHECK(Shape{64, 784}.str() == "64x784");
  CHECK(Shape{10}.str() == "10");
  CHECK(Shape{128}.keras_str() == "(None, 128)");
  CHECK(Shape{28, 28}.keras_str() == "(None, 28, 28)");
}

TEST_CASE("Shape: with_batch prepends an axis, without_first_axis drops one") {
  const Shape batch = Shape{28, 28}.with_batch(64);
  CHECK(batch == Shape{64, 28, 28});
  CHECK(batch.without_first_axis() == Shape{28, 28});
  CHECK(Shape{5}.without_first_axis() == Shape{});
  CHECK(Shape{5}.without_first_axis().rank() == 0);
  CHECK_FALSE(Shape{2, 3} == Shape{3, 2});
  CHECK_FALSE(Shape{2, 3} == Shape{2, 3, 1});
  CHECK_THROWS_AS((void)Shape{}.without_first_axis(), ShapeError);
}

TEST_CASE("Shape: more than six axes, or a negative axis, is a ShapeError") {
  CHECK_NOTHROW((void)Shape{1, 2, 3, 4, 5, 6});
  const std::string message = shape_error_message([] { (void)Shape{1, 2, 3, 4, 5, 6, 7}; });
  CHECK(contains(message, "6"));
  CHECK(contains(message, "7"));
  const std::vector<int64_t> seven_axes{1, 1, 1, 1, 1, 1, 1};
  CHECK_THROWS_AS((void)Shape(std::span<const int64_t>(seven_axes)), ShapeError);
  CHECK_THROWS_AS((void)Shape({3, -1}), ShapeError);
  // A rank-6 shape has no room for a batch axis.
  CHECK_THROWS_AS((void)Shape({1, 2, 3, 4, 5, 6}).with_batch(8), ShapeError);
}

// ---- Tensor ---------------------------------------------------------------------------------------

TEST_CASE("Tensor: construction fills, or takes exactly shape.element_count() values") {
  const Tensor filled(Shape{2, 3}, 1.5f);
  CHECK(filled.size() == 6);
  CHECK(filled.rank() == 2);
  CHECK(filled.dim(1) == 3);
  for (float v : filled.values()) CHECK(v == 1.5f);

  const Tensor zeros(Shape{4});
  for (float v : zeros.values()) CHECK(v == 0.0f);

  const Tensor given(Shape{2, 2}, {1, 2, 3, 4});
  CHECK(given[3] == 4.0f);
  CHECK(Tensor().empty());
  CHECK_FALSE(given.empty());
}

TEST_CASE("Tensor: the wrong number of values is a ShapeError naming both counts") {
  const std::string message = shape_error_message([] { (void)Tensor(Shape{2, 3}, std::vector<float>{1, 2, 3, 4, 5}); });
  CHECK(contains(message, "2x3"));
  CHECK(contains(message, "6 values"));
  CHECK(contains(message, "got 5"));
  CHECK_THROWS_AS((void)Tensor(Shape{2}, std::vector<float>{1, 2, 3}), ShapeError);
}

TEST_CASE("Tensor: rows and row_size see axis 0 as the batch") {
  const Tensor images(Shape{5, 4, 3});
  CHECK(images.rows() == 5);
  CHECK(images.row_size() == 12);
  const Tensor empty_batch(Shape{0, 10});
  CHECK(empty_batch.rows() == 0);
  CHECK(empty_batch.row_size() == 0);
}

TEST_CASE("Tensor: resize keeps the storage, so regrowing to an earlier size does not reallocate") {
  Tensor t(Shape{64, 100}, 2.0f);
  const float* storage = t.data();
  t.resize(Shape{10, 100});  // a smaller last batch
  CHECK(t.shape() == Shape{10, 100});
  CHECK(t.size() == 1000);
  CHECK(t.data() == storage);
  CHECK(t[999] == 2.0f);  // the kept elements keep their values
  t.resize(Shape{64, 100});  // back to a full batch
  CHECK(t.data() == storage);
  CHECK(t.size() == 6400);
  // Elements beyond the shrunk size are new, and new elements are zero.
  CHECK(t[1000] == 0.0f);
  CHECK(t[6399] == 0.0f);
  CHECK(t[0] == 2.0f);
}

TEST_CASE("Tensor: reshape keeps the values and checks the element count") {
  Tensor t(Shape{2, 3}, counting(6));
  t.reshape(Shape{3, 2});
  CHECK(t.shape() == Shape{3, 2});
  CHECK(t.at(2, 1) == 5.0f);
  CHECK(t.at(1, 0) == 2.0f);
  t.reshape(Shape{6});
  CHECK(t.rows() == 6);

  Tensor u(Shape{2, 3});
  const std::string message = shape_error_message([&] { u.reshape(Shape{4, 2}); });
  CHECK(contains(message, "2x3"));
  CHECK(contains(message, "4x2"));
  CHECK(u.shape() == Shape{2, 3});  // unchanged after the failed reshape
}

TEST_CASE("Tensor: a view shares the viewed elements; copies of it own theirs; resizing it detaches it") {
  Tensor source(Shape{2, 2, 3}, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11});
  Tensor flat;
  flat.view(source, Shape{2, 6});
  CHECK(flat.is_view());
  CHECK(flat.shape() == Shape{2, 6});
  CHECK(flat.data() == source.data());
  CHECK(flat.at(1, 2) == 8.0f);
  source[8] = 80.0f;  // a view sees its source change...
  CHECK(flat.at(1, 2) == 80.0f);
  flat[0] = -1.0f;  // ...and writes through to it
  CHECK(source[0] == -1.0f);

  const Tensor copy = flat;  // a copy owns its elements
  CHECK_FALSE(copy.is_view());
  CHECK(copy.data() != source.data());
  CHECK(copy.shape() == Shape{2, 6});
  CHECK(std::vector<float>(copy.values().begin(), copy.values().end()) ==
        std::vector<float>(source.values().begin(), source.values().end()));
  Tensor assigned(Shape{1});
  assigned = flat;
  CHECK_FALSE(assigned.is_view());
  CHECK(assigned[8] == 80.0f);

  Tensor moved = std::move(flat);  // a move keeps the view
  CHECK(moved.is_view());
  CHECK(moved.data() == source.data());

  moved.resize(Shape{3, 6});  // resizing detaches: the values seen so far, then zeros
  CHECK_FALSE(moved.is_view());
  CHECK(moved.data() != source.data());
  CHECK(moved[0] == -1.0f);
  CHECK(moved[8] == 80.0f);
  CHECK(moved[17] == 0.0f);
  source[1] = 100.0f;
  CHECK(moved[1] == 1.0f);

  Tensor wrong;
  CHECK_THROWS_WITH_AS(wrong.view(source, Shape{5, 2}), doctest::Contains("cannot view a tensor of shape 2x2x3 as 5x2"),
                       ShapeError);
}

TEST_CASE("Tensor: an owning tensor moved keeps its elements where they were") {
  Tensor owner(Shape{3}, {1, 2, 3});
  const float* elements = owner.data();
  Tensor moved(std::move(owner));
  CHECK_FALSE(moved.is_view());
  CHECK(moved.data() == elements);
  CHECK(moved[2] == 3.0f);
  CHECK(owner.empty());  // NOLINT: the moved-from tensor is empty, as documented
  Tensor target;
  target = std::move(moved);
  CHECK(target.data() == elements);
  CHECK(target.size() == 3);
  Tensor& same = target;
  target = same;  // self-assignment keeps it
  CHECK(target[1] == 2.0f);
}

TEST_CASE("Tensor: slice_rows copies rows [begin, end)") {
  const Tensor t(Shape{4, 2, 2}, counting(16));
  const Tensor middle = t.slice_rows(1, 3);
  CHECK(middle.shape() == Shape{2, 2, 2});
  for (int64_t i = 0; i < middle.size(); ++i) CHECK(middle[i] == static_cast<float>(4 + i));
  CHECK(middle.data() != t.data() + 4);  // a copy, not a view

  const Tensor none = t.slice_rows(2, 2);
  CHECK(none.shape() == Shape{0, 2, 2});
  CHECK(t.slice_rows(0, 4).values()[15] == 15.0f);

  CHECK_THROWS_AS((void)t.slice_rows(-1, 2), ShapeError);
  CHECK_THROWS_AS((void)t.slice_rows(3, 2), ShapeError);
  const std::string message = shape_error_message([&] { (void)t.slice_rows(2, 5); });
  CHECK(contains(message, "4 rows"));
}

TEST_CASE("Tensor: matrix() is a row-major [rows, row_size] view over the same storage") {
  Tensor t(Shape{2, 3}, {1, 2, 3, 4, 5, 6});
  kiln::MatrixMap m = t.matrix();
  CHECK(m.rows() == 2);
  CHECK(m.cols() == 3);
  CHECK(m(0, 0) == 1.0f);
  CHECK(m(0, 2) == 3.0f);
  CHECK(m(1, 0) == 4.0f);
  CHECK(m(1, 2) == 6.0f);
  CHECK(m.data() == t.data());
  m(1, 1) = 50.0f;  // writes go to the tensor
  CHECK(t[4] == 50.0f);
  CHECK(t.at(1, 1) == 50.0f);

  // Every axis after the first folds into the columns.
  Tensor images(Shape{2, 2, 3}, counting(12));
  const Tensor& const_images = images;
  kiln::ConstMatrixMap flat = const_images.matrix();
  CHECK(flat.rows() == 2);
  CHECK(flat.cols() == 6);
  CHECK(flat(1, 0) == 6.0f);
  CHECK(flat(0, 5) == 5.0f);
}

TEST_CASE("a tensor too large for the machine is a ResourceError naming its shape, not std::bad_alloc") {
  // 12 TB: more than any machine these tests run on, and than the sanitizers' allocators allow.
  const Shape huge{1'000'000, 1'000'000, 3};
  const auto message_of = [](const auto& make) -> std::string {
    try {
      make();
    } catch (const ResourceError& error) {
      return error.what();
    }
    return "";
  };
  const std::string message = message_of([&] { Tensor too_large(huge); });
  CHECK(message.find("1000000x1000000x3") != std::string::npos);
  CHECK(message.find("12000.0 GB") != std::string::npos);
  CHECK(message_of([&] { Tensor::uninitialized(huge); }) == message);
  Tensor small(Shape{2, 2}, 1.0f);
  CHECK(message_of([&] { small.resize(huge); }) == message);
  CHECK(small.shape() == Shape{2, 2});  // a failed resize leaves the tensor as it was
  CHECK(small[3] == 1.0f);
}
