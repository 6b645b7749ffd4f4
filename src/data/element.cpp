// Stacking samples into batches and back, and the pipeline's positioned errors.
#include "kiln/data/element.hpp"

#include <cstring>

namespace kiln::data {

void rethrow_with_position(const std::string& stage, int64_t element_index) {
  try {
    throw;
  } catch (const PipelineError&) {
    throw;
  } catch (const std::exception& error) {
    std::throw_with_nested(PipelineError(stage + ": element " + std::to_string(element_index) + ": " + error.what()));
  } catch (...) {
    std::throw_with_nested(PipelineError(stage + ": element " + std::to_string(element_index) +
                                         ": an exception that is not a std::exception"));
  }
}

bool sample_weight_fits(const Tensor& sample_weight, int64_t rows) {
  return sample_weight.empty() || (sample_weight.rank() > 0 && sample_weight.rows() == rows && sample_weight.row_size() == 1);
}

void check_sample_weight(const Tensor& sample_weight, int64_t rows, const std::string& where) {
  if (!sample_weight_fits(sample_weight, rows)) {
    throw ShapeError(where + ": sample_weight must hold one weight per sample, shape [" + std::to_string(rows) + "] or [" +
                     std::to_string(rows) + ", 1], got " + sample_weight.shape().str());
  }
}

Tensor stack(std::vector<Tensor>&& samples) {
  if (samples.empty()) return Tensor();
  const Shape sample_shape = samples.front().shape();
  Tensor batch(sample_shape.with_batch(static_cast<int64_t>(samples.size())));
  const int64_t sample_size = sample_shape.element_count();
  for (size_t i = 0; i < samples.size(); ++i) {
    if (!(samples[i].shape() == sample_shape)) {
      throw ShapeError("batch: element " + std::to_string(i) + " has shape " + samples[i].shape().str() +
                       " but the batch's first has " + sample_shape.str() + " (resize them to one shape first)");
    }
    if (sample_size > 0) {
      std::memcpy(batch.data() + static_cast<int64_t>(i) * sample_size, samples[i].data(), sizeof(float) * static_cast<size_t>(sample_size));
    }
  }
  return batch;
}

LabeledData stack(std::vector<LabeledData>&& samples) {
  const bool weighted = !samples.empty() && !samples.front().sample_weight.empty();
  std::vector<Tensor> xs, ys, weights;
  xs.reserve(samples.size());
  ys.reserve(samples.size());
  for (size_t i = 0; i < samples.size(); ++i) {
    if (samples[i].sample_weight.empty() == weighted) {
      throw ValueError("batch: element " + std::to_string(i) + (weighted ? " has no sample weight but the batch's first has one"
                                                                          : " has a sample weight but the batch's first has none"));
    }
    xs.push_back(std::move(samples[i].x));
    ys.push_back(std::move(samples[i].y));
    if (weighted) weights.push_back(std::move(samples[i].sample_weight));
  }
  return {stack(std::move(xs)), stack(std::move(ys)), weighted ? stack(std::move(weights)) : Tensor()};
}

Tensor row_of(const Tensor& batch, int64_t row) {
  Tensor sample(batch.shape().without_first_axis());
  if (sample.size() > 0) std::memcpy(sample.data(), batch.data() + row * batch.row_size(), sizeof(float) * static_cast<size_t>(sample.size()));
  return sample;
}

LabeledData row_of(const LabeledData& batch, int64_t row) {
  return {row_of(batch.x, row), row_of(batch.y, row), batch.sample_weight.empty() ? Tensor() : row_of(batch.sample_weight, row)};
}

void gather_rows(const Tensor& source, std::span<const int64_t> rows, Tensor& batch) {
  if (source.rank() == 0) throw ShapeError("gather_rows: a scalar has no rows to gather");
  const int64_t row_size = source.row_size();
  for (const int64_t row : rows) {
    if (row < 0 || row >= source.rows()) {
      throw ShapeError("gather_rows: row " + std::to_string(row) + " is outside the " + std::to_string(source.rows()) +
                       " rows of the data");
    }
  }
  batch.resize(source.shape().without_first_axis().with_batch(static_cast<int64_t>(rows.size())));
  for (size_t i = 0; i < rows.size(); ++i) {
    std::memcpy(batch.data() + static_cast<int64_t>(i) * row_size, source.data() + rows[i] * row_size,
                sizeof(float) * static_cast<size_t>(row_size));
  }
}

Tensor gather_rows(const Tensor& source, std::span<const int64_t> rows) {
  Tensor batch;
  gather_rows(source, rows, batch);
  return batch;
}

LabeledData gather_rows(const LabeledData& source, std::span<const int64_t> rows) {
  return {gather_rows(source.x, rows), gather_rows(source.y, rows),
          source.sample_weight.empty() ? Tensor() : gather_rows(source.sample_weight, rows)};
}

std::vector<Tensor> unstack(Tensor&& batch) {
  if (batch.rank() == 0) throw ShapeError("unbatch: a scalar tensor has no batch axis to split");
  std::vector<Tensor> samples;
  samples.reserve(static_cast<size_t>(batch.rows()));
  for (int64_t r = 0; r < batch.rows(); ++r) samples.push_back(row_of(batch, r));
  return samples;
}

std::vector<LabeledData> unstack(LabeledData&& batch) {
  if (batch.x.rows() != batch.y.rows()) {
    throw ShapeError("unbatch: x has " + std::to_string(batch.x.rows()) + " rows but y has " + std::to_string(batch.y.rows()));
  }
  std::vector<LabeledData> samples;
  samples.reserve(static_cast<size_t>(batch.x.rows()));
  if (!batch.sample_weight.empty() && batch.sample_weight.rows() != batch.x.rows()) {
    throw ShapeError("unbatch: x has " + std::to_string(batch.x.rows()) + " rows but sample_weight has " +
                     std::to_string(batch.sample_weight.rows()));
  }
  for (int64_t r = 0; r < batch.x.rows(); ++r) samples.push_back(row_of(batch, r));
  return samples;
}

}  // namespace kiln::data
