// kiln/data/element.hpp — what batch() makes of n elements and what unbatch() makes of a batch.
//
//   Tensor       n samples of shape S     -> one Tensor [n, S...]      (and back)
//   LabeledData  n (x, y[, weight]) samples -> one LabeledData of [n, ...] tensors
//   anything else (int64_t from range())  -> std::vector of the elements
// These are plain overloads: the generic std::vector versions are templates, so the Tensor and
// LabeledData ones win wherever they apply. Also here: errors that name an element's position.
#pragma once

#include "kiln/error.hpp"
#include "kiln/tensor.hpp"

#include <exception>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace kiln::data {

// An exception raised inside a pipeline stage, rethrown on the consumer's thread. Its message
// names the stage and the element ("map: element 17: <the original message>"); the original
// exception is nested inside (std::rethrow_if_nested gets it back).
class PipelineError : public Error {
 public:
  using Error::Error;
};

// Rethrows the exception being handled as a PipelineError naming `stage` and `element_index`,
// unless it already is one (the stage nearest its origin names it best).
[[noreturn]] void rethrow_with_position(const std::string& stage, int64_t element_index);

// Throws ShapeError unless sample_weight is empty or holds one weight per row of the data's
// `rows` ([rows] or [rows, 1]); the message begins with `where` ("fit", "from_tensor_slices").
void check_sample_weight(const Tensor& sample_weight, int64_t rows, const std::string& where);
// The test alone, for a training step's hot path (no message built).
bool sample_weight_fits(const Tensor& sample_weight, int64_t rows);

// ---- stacking -----------------------------------------------------------------------------------

Tensor stack(std::vector<Tensor>&& samples);
LabeledData stack(std::vector<LabeledData>&& samples);
template <class T>
std::vector<T> stack(std::vector<T>&& elements) {
  return std::move(elements);
}

std::vector<Tensor> unstack(Tensor&& batch);
std::vector<LabeledData> unstack(LabeledData&& batch);
template <class T>
std::vector<T> unstack(std::vector<T>&& batch) {
  return std::move(batch);
}

// The type batch() produces from elements of type T, and the element type unbatch() gives back.
template <class T>
using BatchOf = decltype(stack(std::declval<std::vector<T>&&>()));
template <class B>
using UnbatchedOf = typename decltype(unstack(std::declval<B&&>()))::value_type;

// One row of a tensor as a sample tensor ([n, S...] -> S), or of x, y and any sample weights.
Tensor row_of(const Tensor& batch, int64_t row);
LabeledData row_of(const LabeledData& batch, int64_t row);
inline int64_t row_count(const Tensor& x) { return x.rows(); }
inline int64_t row_count(const LabeledData& data) { return data.x.rows(); }

// The given rows of a tensor, or of x, y and any sample weights, as one batch, in that order: how batch() over
// from_tensor_slices (shuffled or not) makes its batches, and how an index-shuffling pipeline
// (range(n).shuffle(n).batch(b).map(...)) turns a batch of indices into data.
Tensor gather_rows(const Tensor& source, std::span<const int64_t> rows);
LabeledData gather_rows(const LabeledData& source, std::span<const int64_t> rows);
// The same into `batch`, resized to hold them (it keeps its capacity, so a buffer reused step after
// step stops allocating): fit(x, y) gathers its shuffled batches this way. The one row gather:
// each of the above is this.
void gather_rows(const Tensor& source, std::span<const int64_t> rows, Tensor& batch);

}  // namespace kiln::data
