// Shape and Tensor: sizes, printing, and the capacity-keeping resize.
#include "kiln/tensor.hpp"

#include "kiln/error.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <new>
#include <stdexcept>

namespace kiln {

Shape::Shape(std::initializer_list<int64_t> dims) : Shape(std::span<const int64_t>(dims.begin(), dims.size())) {}

Shape::Shape(std::span<const int64_t> dims) {
  if (dims.size() > kMaxRank) {
    throw ShapeError("a shape has at most " + std::to_string(kMaxRank) + " axes, got " + std::to_string(dims.size()));
  }
  for (int64_t d : dims) {
    if (d < 0) throw ShapeError("shape axes must be >= 0, got " + std::to_string(d));
  }
  std::copy(dims.begin(), dims.end(), dims_.begin());
  rank_ = static_cast<int>(dims.size());
}

int64_t Shape::element_count() const {
  int64_t count = 1;
  for (int64_t d : dims()) count *= d;
  return count;
}

Shape Shape::without_first_axis() const {
  if (rank_ == 0) throw ShapeError("cannot drop the first axis of a scalar shape");
  return Shape(dims().subspan(1));
}

Shape Shape::with_batch(int64_t batch) const {
  if (rank_ == kMaxRank) throw ShapeError("shape " + str() + " has no room for a batch axis");
  Shape result;
  result.rank_ = rank_ + 1;
  result.dims_[0] = batch;
  std::copy(dims_.begin(), dims_.begin() + rank_, result.dims_.begin() + 1);
  return result;
}

std::string Shape::str() const {
  if (rank_ == 0) return "scalar";
  std::string text;
  for (int i = 0; i < rank_; ++i) text += (i ? "x" : "") + std::to_string(dims_[static_cast<size_t>(i)]);
  return text;
}

std::string Shape::keras_str() const {
  std::string text = "(None";
  for (int i = 0; i < rank_; ++i) text += ", " + std::to_string(dims_[static_cast<size_t>(i)]);
  return text + ")";
}

namespace {

std::string byte_count_text(double bytes) {
  char text[32];
  if (bytes >= 1e9) {
    std::snprintf(text, sizeof text, "%.1f GB", bytes / 1e9);
  } else {
    std::snprintf(text, sizeof text, "%.1f MB", bytes / 1e6);
  }
  return text;
}

}  // namespace

void* allocate_cache_lines(size_t bytes) {
  try {
    return ::operator new(bytes, std::align_val_t{64});
  } catch (const std::bad_alloc&) {
    throw ResourceError("out of memory: " + byte_count_text(static_cast<double>(bytes)) + " could not be allocated");
  }
}

namespace {

// Runs `allocate` (which sizes a tensor's storage), so that a size the machine cannot hold is a
// ResourceError naming the tensor's shape.
template <class Allocate>
void allocate_for(const Shape& shape, const Allocate& allocate) {
  try {
    allocate();
  } catch (const ResourceError&) {
    throw ResourceError("out of memory: a tensor of shape " + shape.str() + " needs " +
                        byte_count_text(static_cast<double>(shape.element_count()) * sizeof(float)));
  } catch (const std::length_error&) {
    throw ResourceError("a tensor of shape " + shape.str() + " is larger than this machine can address");
  }
}

}  // namespace

bool operator==(const Shape& a, const Shape& b) {
  return a.rank_ == b.rank_ && std::equal(a.dims_.begin(), a.dims_.begin() + a.rank_, b.dims_.begin());
}

Tensor::Tensor(const Shape& shape, float fill) : shape_(shape) {
  allocate_for(shape, [&] { storage_.assign(static_cast<size_t>(shape.element_count()), fill); });
  own_storage();
}

Tensor::Tensor(const Shape& shape, std::vector<float> values) : shape_(shape) {
  if (static_cast<int64_t>(values.size()) != shape.element_count()) {
    throw ShapeError("a tensor of shape " + shape.str() + " needs " + std::to_string(shape.element_count()) +
                     " values, got " + std::to_string(values.size()));
  }
  storage_.assign(values.begin(), values.end());
  own_storage();
}

Tensor Tensor::uninitialized(const Shape& shape) {
  Tensor tensor;
  tensor.shape_ = shape;
  allocate_for(shape, [&] { tensor.storage_.resize(static_cast<size_t>(shape.element_count())); });  // left unset
  tensor.own_storage();
  return tensor;
}

Tensor::Tensor(const Tensor& other) : shape_(other.shape_), storage_(other.data_, other.data_ + other.size_) {
  own_storage();
}

Tensor& Tensor::operator=(const Tensor& other) {
  if (this != &other) *this = Tensor(other);  // through a copy: other may be a view of this tensor
  return *this;
}

// A moved vector keeps its buffer, so an owning tensor's data_ stays valid; a view's is kept.
Tensor::Tensor(Tensor&& other) noexcept
    : shape_(other.shape_), storage_(std::move(other.storage_)), data_(other.data_), size_(other.size_) {
  other.storage_.clear();
  other.own_storage();
}

Tensor& Tensor::operator=(Tensor&& other) noexcept {
  if (this != &other) {
    shape_ = other.shape_;
    storage_ = std::move(other.storage_);
    data_ = other.data_;
    size_ = other.size_;
    other.storage_.clear();
    other.own_storage();
  }
  return *this;
}

void Tensor::resize(const Shape& shape) {
  if (is_view()) storage_.assign(data_, data_ + size_);  // the viewed values become this tensor's
  const size_t old_size = storage_.size(), new_size = static_cast<size_t>(shape.element_count());
  allocate_for(shape, [&] { storage_.resize(new_size); });
  shape_ = shape;
  if (new_size > old_size) std::fill(storage_.begin() + static_cast<std::ptrdiff_t>(old_size), storage_.end(), 0.0f);
  own_storage();
}

void Tensor::reshape(const Shape& shape) {
  if (shape.element_count() != size()) {
    throw ShapeError("cannot reshape a tensor of shape " + shape_.str() + " to " + shape.str() +
                     ": element counts differ");
  }
  shape_ = shape;
}

void Tensor::view(const Tensor& source, const Shape& shape) {
  if (shape.element_count() != source.size()) {
    throw ShapeError("cannot view a tensor of shape " + source.shape().str() + " as " + shape.str() +
                     ": element counts differ");
  }
  shape_ = shape;
  data_ = const_cast<float*>(source.data_);  // a view writes what it views; see the header
  size_ = source.size_;
}

Tensor Tensor::slice_rows(int64_t begin, int64_t end) const {
  if (begin < 0 || end < begin || end > rows()) {
    throw ShapeError("rows [" + std::to_string(begin) + ", " + std::to_string(end) + ") are outside a tensor of " +
                     std::to_string(rows()) + " rows");
  }
  Shape shape = shape_;
  shape[0] = end - begin;
  Tensor result(shape);
  if (end > begin) std::memcpy(result.data(), data() + begin * row_size(), sizeof(float) * static_cast<size_t>(result.size()));
  return result;
}

}  // namespace kiln
