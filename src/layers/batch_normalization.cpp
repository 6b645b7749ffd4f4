// BatchNormalization: batch statistics in fixed slices, forward and backward side by side.
#include "kiln/layers/batch_normalization.hpp"

#include "kiln/error.hpp"
#include "kiln/parallel.hpp"

#include <algorithm>
#include <cmath>

namespace kiln::layers {

namespace {
// The rows are summed in this many slices whatever the team's size, then the slices in order.
constexpr int64_t kSlices = 16;
}  // namespace

BatchNormalization::BatchNormalization(const BatchNormalizationOptions& options)
    : Layer(options.input_shape), momentum_(options.momentum), epsilon_(options.epsilon) {
  if (!(momentum_ >= 0.0f && momentum_ <= 1.0f)) {
    throw ValueError("BatchNormalization's momentum must be in [0, 1], got " + std::to_string(momentum_));
  }
  if (!(epsilon_ > 0.0f)) throw ValueError("BatchNormalization's epsilon must be positive, got " + std::to_string(epsilon_));
}

Shape BatchNormalization::build(const Shape& input_shape) {
  const std::optional<Shape>& declared = declared_input_shape();
  if (declared && !(*declared == input_shape)) {
    throw ShapeError(describe() + " expects input of shape " + declared->str() + ", got " + input_shape.str());
  }
  if (input_shape.rank() == 0) throw ShapeError(describe() + " needs samples with at least one axis, got a scalar");
  input_shape_ = input_shape;
  channels_ = input_shape[input_shape.rank() - 1];
  for (Parameter* parameter : parameters()) parameter->shape = Shape{channels_};
  const auto channels = static_cast<size_t>(channels_);
  slice_sums_.assign(static_cast<size_t>(kSlices) * 2 * channels, 0.0);
  sums_.assign(channels, 0.0);
  second_sums_.assign(channels, 0.0);
  mean_.assign(channels, 0.0f);
  inverse_std_.assign(channels, 0.0f);
  return input_shape;
}

void BatchNormalization::initialize(uint64_t /*seed*/) {
  std::fill_n(gamma_.value, channels_, 1.0f);
  std::fill_n(beta_.value, channels_, 0.0f);
  std::fill_n(moving_mean_.value, channels_, 0.0f);
  std::fill_n(moving_variance_.value, channels_, 1.0f);
}

void BatchNormalization::channel_sums(const float* a, const float* b, int64_t rows, double* first, double* second) {
  const int64_t channels = channels_;
  double* slices = slice_sums_.data();
  const int64_t tiles = rows * channels >= kParallelMinElements ? kSlices : 1;
  parallel_tiles(tiles, [=](int64_t first_tile, int64_t end_tile) {
    for (int64_t tile = first_tile; tile < end_tile; ++tile) {
      double* a_sum = slices + tile * 2 * channels;
      double* ab_sum = a_sum + channels;
      std::fill_n(a_sum, 2 * channels, 0.0);
      for (int64_t r = tile * rows / tiles; r < (tile + 1) * rows / tiles; ++r) {
        const float* a_row = a + r * channels;
        for (int64_t c = 0; c < channels; ++c) a_sum[c] += a_row[c];
        if (b) {
          const float* b_row = b + r * channels;
          for (int64_t c = 0; c < channels; ++c) ab_sum[c] += static_cast<double>(a_row[c]) * b_row[c];
        }
      }
    }
  });
  std::fill_n(first, channels, 0.0);
  if (second) std::fill_n(second, channels, 0.0);
  for (int64_t tile = 0; tile < tiles; ++tile) {
    for (int64_t c = 0; c < channels; ++c) {
      first[c] += slices[tile * 2 * channels + c];
      if (second) second[c] += slices[tile * 2 * channels + channels + c];
    }
  }
}

const Tensor& BatchNormalization::forward(const Tensor& x, bool training) {
  if (!(x.shape().without_first_axis() == input_shape_)) {
    throw ShapeError(describe() + " expects input of shape " + input_shape_.str() + ", got " +
                     x.shape().without_first_axis().str());
  }
  const int64_t channels = channels_, rows = x.size() / std::max<int64_t>(channels, 1);
  last_was_training_ = training;
  if (training && rows > 0) {
    // Two passes, the mean first, so the variance sums squares of deviations rather than taking
    // the difference of two large sums of squares.
    channel_sums(x.data(), nullptr, rows, sums_.data(), nullptr);
    for (int64_t c = 0; c < channels; ++c) mean_[c] = static_cast<float>(sums_[c] / static_cast<double>(rows));
    normalized_.resize(x.shape());
    float* deviation = normalized_.data();
    const float* in = x.data();
    const float* mean = mean_.data();
    for_each_share(rows, x.size() >= kParallelMinElements, [=](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        for (int64_t c = 0; c < channels; ++c) deviation[r * channels + c] = in[r * channels + c] - mean[c];
      }
    });
    channel_sums(normalized_.data(), normalized_.data(), rows, sums_.data(), second_sums_.data());
    for (int64_t c = 0; c < channels; ++c) {
      const double variance = second_sums_[c] / static_cast<double>(rows);
      inverse_std_[c] = static_cast<float>(1.0 / std::sqrt(variance + epsilon_));
      moving_mean_.value[c] = moving_mean_.value[c] * momentum_ + mean_[c] * (1.0f - momentum_);
      moving_variance_.value[c] = moving_variance_.value[c] * momentum_ + static_cast<float>(variance) * (1.0f - momentum_);
    }
  } else {
    for (int64_t c = 0; c < channels; ++c) {
      mean_[c] = moving_mean_.value[c];
      inverse_std_[c] = 1.0f / std::sqrt(moving_variance_.value[c] + epsilon_);
    }
    normalized_.resize(x.shape());
    std::copy_n(x.data(), x.size(), normalized_.data());
    const float* mean = mean_.data();
    float* deviation = normalized_.data();
    for_each_share(rows, x.size() >= kParallelMinElements, [=](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        for (int64_t c = 0; c < channels; ++c) deviation[r * channels + c] -= mean[c];
      }
    });
  }
  // x_hat = deviation * inverse_std, kept for backward; y = gamma * x_hat + beta
  output_.resize(x.shape());
  float* x_hat = normalized_.data();
  float* out = output_.data();
  const float* inverse_std = inverse_std_.data();
  const float* gamma = gamma_.value;
  const float* beta = beta_.value;
  for_each_share(rows, x.size() >= kParallelMinElements, [=](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      for (int64_t c = 0; c < channels; ++c) {
        x_hat[r * channels + c] *= inverse_std[c];
        out[r * channels + c] = gamma[c] * x_hat[r * channels + c] + beta[c];
      }
    }
  });
  return output_;
}

// With m rows, dbeta = sum dy and dgamma = sum dy * x_hat over each channel. In training, mean
// and variance depend on every x of the channel too, and the chain rule through both gives
//   dx = gamma * inverse_std / m * (m * dy - dbeta - x_hat * dgamma);
// at inference they are constants and dx = gamma * inverse_std * dy.
const Tensor& BatchNormalization::backward(const Tensor& dy) {
  if (!(dy.shape() == output_.shape())) {
    throw ShapeError(describe() + " got an output gradient of " + dy.shape().str() + " for its output of " +
                     output_.shape().str());
  }
  const int64_t channels = channels_, rows = dy.size() / std::max<int64_t>(channels, 1);
  channel_sums(dy.data(), normalized_.data(), rows, sums_.data(), second_sums_.data());
  for (int64_t c = 0; c < channels; ++c) {
    beta_.gradient[c] = static_cast<float>(sums_[c]);
    gamma_.gradient[c] = static_cast<float>(second_sums_[c]);
  }
  std::fill_n(moving_mean_.gradient, channels, 0.0f);
  std::fill_n(moving_variance_.gradient, channels, 0.0f);
  if (!input_gradient_needed()) return input_gradient_;
  input_gradient_.resize(dy.shape());
  const bool training = last_was_training_;
  const float* g = dy.data();
  const float* x_hat = normalized_.data();
  const float* inverse_std = inverse_std_.data();
  const float* gamma = gamma_.value;
  const float* dbeta = beta_.gradient;
  const float* dgamma = gamma_.gradient;
  float* dx = input_gradient_.data();
  const auto m = static_cast<float>(rows);
  for_each_share(rows, dy.size() >= kParallelMinElements, [=](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      for (int64_t c = 0; c < channels; ++c) {
        const int64_t i = r * channels + c;
        dx[i] = training ? gamma[c] * inverse_std[c] / m * (m * g[i] - dbeta[c] - x_hat[i] * dgamma[c])
                         : gamma[c] * inverse_std[c] * g[i];
      }
    }
  });
  return input_gradient_;
}

}  // namespace kiln::layers
