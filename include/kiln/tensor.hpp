// kiln/tensor.hpp — Shape and Tensor: the one data type every layer, loss and dataset speaks.
//
// A Tensor is a shape plus contiguous, row-major float32 storage that it owns. Axis 0 is the
// batch. Eigen views (`matrix()`) let layers run GEMMs on it without copying. Resizing keeps the
// storage's capacity, so a training step reuses its buffers instead of allocating new ones.
// Not thread-safe: a Tensor belongs to whichever thread is using it.
#pragma once

#include <Eigen/Core>

#include <array>
#include <cstdint>
#include <initializer_list>
#include <new>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace kiln {

// Up to six axes, stored inline: building or copying a Shape never allocates, which keeps the
// training step allocation-free.
class Shape {
 public:
  static constexpr int kMaxRank = 6;

  Shape() = default;
  Shape(std::initializer_list<int64_t> dims);
  explicit Shape(std::span<const int64_t> dims);

  int rank() const { return rank_; }
  int64_t operator[](int axis) const { return dims_[static_cast<size_t>(axis)]; }
  int64_t& operator[](int axis) { return dims_[static_cast<size_t>(axis)]; }
  std::span<const int64_t> dims() const { return {dims_.data(), static_cast<size_t>(rank_)}; }

  int64_t element_count() const;                            // product of all axes (1 for rank 0)
  Shape without_first_axis() const;                         // [b, h, w] -> [h, w]
  Shape with_batch(int64_t batch) const;                    // [h, w] -> [batch, h, w]
  std::string str() const;                                  // "28x28", "64x784"
  std::string keras_str() const;                            // "(None, 128)" as Keras prints it

  friend bool operator==(const Shape& a, const Shape& b);

 private:
  std::array<int64_t, kMaxRank> dims_{};
  int rank_ = 0;
};

// Storage aligned to 64 bytes (a cache line, and the widest vector load), fixed here rather than
// taken from Eigen's allocator, whose alignment depends on each translation unit's -march flags:
// a program built without -march=native must be able to free a tensor kiln allocated.
// Allocation failures are ResourceErrors (not std::bad_alloc) naming the size asked for.
void* allocate_cache_lines(size_t bytes);

template <class T>
struct CacheLineAllocator {
  using value_type = T;
  static constexpr std::align_val_t kAlignment{64};
  CacheLineAllocator() = default;
  template <class U>
  CacheLineAllocator(const CacheLineAllocator<U>&) {}  // NOLINT: allocators convert implicitly
  T* allocate(size_t count) { return static_cast<T*>(allocate_cache_lines(count * sizeof(T))); }
  void deallocate(T* pointer, size_t) { ::operator delete(pointer, std::align_val_t{64}); }
  // A growing vector default-initialises its new elements: floats are left unset rather than
  // zeroed, so a buffer that is about to be overwritten whole is not written twice. Whoever
  // promises zeros (Tensor::resize, resize(n, 0.0f)) writes them.
  template <class U>
  void construct(U* pointer) noexcept { ::new (static_cast<void*>(pointer)) U; }
  template <class U, class... Args>
  void construct(U* pointer, Args&&... args) { ::new (static_cast<void*>(pointer)) U(std::forward<Args>(args)...); }
  friend bool operator==(const CacheLineAllocator&, const CacheLineAllocator&) { return true; }
};

// Row-major float matrix types used for Eigen views over tensors and parameters.
using Matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using MatrixMap = Eigen::Map<Matrix>;
using ConstMatrixMap = Eigen::Map<const Matrix>;
using VectorMap = Eigen::Map<Eigen::VectorXf>;
using ConstVectorMap = Eigen::Map<const Eigen::VectorXf>;

// A float array with a shape, row-major. A tensor owns its elements, except a view (see view()),
// which reads and writes another tensor's.
class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(const Shape& shape, float fill = 0.0f);
  Tensor(const Shape& shape, std::vector<float> values);  // values.size() must match the shape
  // A tensor whose elements are left unset, for code that writes every one of them next.
  static Tensor uninitialized(const Shape& shape);

  // Copies own their elements, even a copy of a view; moves keep what they move.
  Tensor(const Tensor& other);
  Tensor& operator=(const Tensor& other);
  Tensor(Tensor&& other) noexcept;
  Tensor& operator=(Tensor&& other) noexcept;
  ~Tensor() = default;

  const Shape& shape() const { return shape_; }
  int rank() const { return shape_.rank(); }
  int64_t size() const { return size_; }
  int64_t dim(int axis) const { return shape_[axis]; }
  bool empty() const { return size_ == 0; }

  // Axis 0 is the batch; a "row" is one sample, all other axes flattened.
  int64_t rows() const { return shape_.rank() == 0 ? 1 : shape_[0]; }
  int64_t row_size() const { return rows() == 0 ? 0 : size() / rows(); }

  float* data() { return data_; }
  const float* data() const { return data_; }
  std::span<float> values() { return {data_, static_cast<size_t>(size_)}; }
  std::span<const float> values() const { return {data_, static_cast<size_t>(size_)}; }
  float& operator[](int64_t i) { return data_[i]; }
  float operator[](int64_t i) const { return data_[i]; }
  float& at(int64_t row, int64_t column) { return data_[row * row_size() + column]; }
  float at(int64_t row, int64_t column) const { return data_[row * row_size() + column]; }

  // Change the shape. Storage grows only past its largest size so far, so a training step that
  // sees the same (or a smaller, last) batch again allocates nothing. New elements are zero. A
  // view resized becomes a tensor of its own, keeping the values it saw.
  void resize(const Shape& shape);
  // Same element count, new shape.
  void reshape(const Shape& shape);
  // Makes this tensor a view of source's elements under `shape`, which must have as many: no copy
  // (Flatten). It is valid while source lives and keeps its storage, and writing through it
  // writes source's elements.
  void view(const Tensor& source, const Shape& shape);
  bool is_view() const { return data_ != storage_.data(); }

  // [rows, row_size] row-major view: the batch as a matrix, for GEMMs.
  MatrixMap matrix() { return {data(), rows(), row_size()}; }
  ConstMatrixMap matrix() const { return {data(), rows(), row_size()}; }

  // A copy of rows [begin, end) of axis 0.
  Tensor slice_rows(int64_t begin, int64_t end) const;

 private:
  // After storage_ changes: the tensor's elements are storage_'s.
  void own_storage() {
    data_ = storage_.data();
    size_ = static_cast<int64_t>(storage_.size());
  }

  Shape shape_;
  std::vector<float, CacheLineAllocator<float>> storage_;
  float* data_ = nullptr;  // storage_.data(), or a viewed tensor's elements
  int64_t size_ = 0;
};

// Inputs with their targets, row i of x going with row i of y: a training or test set in memory,
// or one batch of it. sample_weight, when not empty, holds one weight per row ([n] or [n, 1]),
// Keras's third element of (x, y, sample_weight): that row's share of the loss and metrics.
struct LabeledData {
  Tensor x;
  Tensor y;
  Tensor sample_weight;
};

}  // namespace kiln
