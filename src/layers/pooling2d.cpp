// 2-D pooling: MaxPooling2D, AveragePooling2D and GlobalAveragePooling2D, forward and backward
// side by side. Every loop shares samples out to the team: a sample's outputs and gradients
// depend on that sample alone, so the results are the same whatever the thread count.
#include "kiln/layers/pooling2d.hpp"

#include "kiln/error.hpp"
#include "kiln/parallel.hpp"

#include <algorithm>

namespace kiln::layers {

namespace {

// The part of output (oh, ow)'s window that lies inside the image: rows [row_begin, row_end),
// columns [column_begin, column_end). Never empty: padding is always smaller than the window.
struct WindowInside {
  int64_t row_begin, row_end, column_begin, column_end;
  int64_t count() const { return (row_end - row_begin) * (column_end - column_begin); }
};

WindowInside inside(const Window2D& w, int64_t oh, int64_t ow) {
  const int64_t top = oh * w.strides.height - w.pad_top, left = ow * w.strides.width - w.pad_left;
  return {std::max<int64_t>(top, 0), std::min(top + w.size.height, w.input_height), std::max<int64_t>(left, 0),
          std::min(left + w.size.width, w.input_width)};
}

}  // namespace

// ---- what the windowed layers share ---------------------------------------------------------------

WindowPooling2D::WindowPooling2D(const std::string& type, Size2D pool_size, const Pooling2DOptions& options)
    : Layer(options.input_shape) {
  check_positive(pool_size, type, "pool_size");
  window_.size = pool_size;
  window_.strides = options.strides.value_or(pool_size);
  check_positive(window_.strides, type, "strides");
  window_.padding = options.padding;
}

Shape WindowPooling2D::build(const Shape& input_shape) {
  const std::optional<Shape>& declared = declared_input_shape();
  if (declared && !(*declared == input_shape)) {
    throw ShapeError(describe() + " expects input of shape " + declared->str() + ", got " + input_shape.str());
  }
  if (input_shape.rank() != 3) {
    throw ShapeError(describe() + " expects images of height x width x channels, got " + input_shape.str());
  }
  window_.fit_to(input_shape[0], input_shape[1], describe());
  channels_ = input_shape[2];
  return Shape{window_.output_height, window_.output_width, channels_};
}

void WindowPooling2D::check_input(const Tensor& x) const {
  if (x.rank() != 4 || x.dim(1) != window_.input_height || x.dim(2) != window_.input_width || x.dim(3) != channels_) {
    throw ShapeError(describe() + " expects images of " + Shape{window_.input_height, window_.input_width, channels_}.str() +
                     ", got " + x.shape().without_first_axis().str());
  }
}

void WindowPooling2D::check_output_gradient(const Tensor& dy) const {
  if (!(dy.shape() == output_.shape())) {
    throw ShapeError(describe() + " got an output gradient of " + dy.shape().str() + " for its output of " +
                     output_.shape().str());
  }
}

// ---- MaxPooling2D ---------------------------------------------------------------------------------

// y[n, oh, ow, c] = max over the window inside the image of x[n, ih, iw, c]
const Tensor& MaxPooling2D::forward(const Tensor& x, bool /*training*/) {
  check_input(x);
  const Window2D w = window_;
  const int64_t batch = x.rows(), channels = channels_;
  output_.resize(Shape{batch, w.output_height, w.output_width, channels});
  winners_.resize(static_cast<size_t>(output_.size()));
  const float* input = x.data();
  float* output = output_.data();
  int32_t* winners = winners_.data();
  for_each_share(batch, x.size() >= kParallelMinElements, [=](int64_t first, int64_t end) {
    const int64_t image_size = w.input_height * w.input_width * channels;
    const int64_t outputs_per_image = w.output_height * w.output_width * channels;
    for (int64_t n = first; n < end; ++n) {
      const float* image = input + n * image_size;
      float* best = output + n * outputs_per_image;
      int32_t* where = winners + n * outputs_per_image;
      for (int64_t oh = 0; oh < w.output_height; ++oh) {
        for (int64_t ow = 0; ow < w.output_width; ++ow, best += channels, where += channels) {
          const WindowInside window = inside(w, oh, ow);
          // Start from the window's first value, then keep the larger of each channel's best
          // and the next value: a compare and two selects per channel, which vectorise, where
          // an `if` per channel would not. On a tie the earlier value stays.
          const int64_t first_offset = (window.row_begin * w.input_width + window.column_begin) * channels;
          for (int64_t c = 0; c < channels; ++c) {
            best[c] = image[first_offset + c];
            where[c] = static_cast<int32_t>(first_offset + c);
          }
          for (int64_t ih = window.row_begin; ih < window.row_end; ++ih) {
            for (int64_t iw = window.column_begin; iw < window.column_end; ++iw) {
              const auto offset = static_cast<int32_t>((ih * w.input_width + iw) * channels);
              const float* values = image + offset;
              for (int64_t c = 0; c < channels; ++c) {
                const bool larger = values[c] > best[c];
                best[c] = larger ? values[c] : best[c];
                where[c] = larger ? offset + static_cast<int32_t>(c) : where[c];
              }
            }
          }
        }
      }
    }
  });
  return output_;
}

// dx[n, i] = sum of dy over the outputs whose maximum was x[n, i] (more than one when windows overlap)
const Tensor& MaxPooling2D::backward(const Tensor& dy) {
  check_output_gradient(dy);
  const int64_t batch = dy.rows(), image_size = window_.input_height * window_.input_width * channels_;
  const int64_t outputs_per_image = dy.row_size();
  input_gradient_.resize(Shape{batch, window_.input_height, window_.input_width, channels_});
  const float* gradient = dy.data();
  const int32_t* winners = winners_.data();
  float* dx = input_gradient_.data();
  for_each_share(batch, input_gradient_.size() >= kParallelMinElements, [=](int64_t first, int64_t end) {
    for (int64_t n = first; n < end; ++n) {
      float* image = dx + n * image_size;
      std::fill_n(image, image_size, 0.0f);
      for (int64_t i = n * outputs_per_image; i < (n + 1) * outputs_per_image; ++i) image[winners[i]] += gradient[i];
    }
  });
  return input_gradient_;
}

// ---- AveragePooling2D -----------------------------------------------------------------------------

// y[n, oh, ow, c] = mean over the window inside the image of x[n, ih, iw, c]
const Tensor& AveragePooling2D::forward(const Tensor& x, bool /*training*/) {
  check_input(x);
  const Window2D w = window_;
  const int64_t batch = x.rows(), channels = channels_;
  output_.resize(Shape{batch, w.output_height, w.output_width, channels});
  const float* input = x.data();
  float* output = output_.data();
  for_each_share(batch, x.size() >= kParallelMinElements, [=](int64_t first, int64_t end) {
    const int64_t image_size = w.input_height * w.input_width * channels;
    for (int64_t n = first; n < end; ++n) {
      const float* image = input + n * image_size;
      float* mean = output + n * w.output_height * w.output_width * channels;
      for (int64_t oh = 0; oh < w.output_height; ++oh) {
        for (int64_t ow = 0; ow < w.output_width; ++ow, mean += channels) {
          const WindowInside window = inside(w, oh, ow);
          std::fill_n(mean, channels, 0.0f);
          for (int64_t ih = window.row_begin; ih < window.row_end; ++ih) {
            for (int64_t iw = window.column_begin; iw < window.column_end; ++iw) {
              const float* values = image + (ih * w.input_width + iw) * channels;
              for (int64_t c = 0; c < channels; ++c) mean[c] += values[c];
            }
          }
          const float scale = 1.0f / static_cast<float>(window.count());
          for (int64_t c = 0; c < channels; ++c) mean[c] *= scale;
        }
      }
    }
  });
  return output_;
}

// Each input in an output's window gets that output's gradient divided by the window's count.
const Tensor& AveragePooling2D::backward(const Tensor& dy) {
  check_output_gradient(dy);
  const Window2D w = window_;
  const int64_t batch = dy.rows(), channels = channels_;
  input_gradient_.resize(Shape{batch, w.input_height, w.input_width, channels});
  const float* gradient = dy.data();
  float* dx = input_gradient_.data();
  for_each_share(batch, input_gradient_.size() >= kParallelMinElements, [=](int64_t first, int64_t end) {
    const int64_t image_size = w.input_height * w.input_width * channels;
    for (int64_t n = first; n < end; ++n) {
      float* image = dx + n * image_size;
      std::fill_n(image, image_size, 0.0f);
      const float* dy_pixel = gradient + n * w.output_height * w.output_width * channels;
      for (int64_t oh = 0; oh < w.output_height; ++oh) {
        for (int64_t ow = 0; ow < w.output_width; ++ow, dy_pixel += channels) {
          const WindowInside window = inside(w, oh, ow);
          const float scale = 1.0f / static_cast<float>(window.count());
          for (int64_t ih = window.row_begin; ih < window.row_end; ++ih) {
            for (int64_t iw = window.column_begin; iw < window.column_end; ++iw) {
              float* target = image + (ih * w.input_width + iw) * channels;
              for (int64_t c = 0; c < channels; ++c) target[c] += dy_pixel[c] * scale;
            }
          }
        }
      }
    }
  });
  return input_gradient_;
}

// ---- GlobalAveragePooling2D -----------------------------------------------------------------------

Shape GlobalAveragePooling2D::build(const Shape& input_shape) {
  const std::optional<Shape>& declared = declared_input_shape();
  if (declared && !(*declared == input_shape)) {
    throw ShapeError(describe() + " expects input of shape " + declared->str() + ", got " + input_shape.str());
  }
  if (input_shape.rank() != 3) {
    throw ShapeError(describe() + " expects images of height x width x channels, got " + input_shape.str());
  }
  input_shape_ = input_shape;
  return Shape{input_shape[2]};
}

// y[n, c] = mean over (h, w) of x[n, h, w, c]
const Tensor& GlobalAveragePooling2D::forward(const Tensor& x, bool /*training*/) {
  if (!(x.shape().without_first_axis() == input_shape_)) {
    throw ShapeError(describe() + " expects images of " + input_shape_.str() + ", got " + x.shape().without_first_axis().str());
  }
  const int64_t batch = x.rows(), pixels = input_shape_[0] * input_shape_[1], channels = input_shape_[2];
  output_.resize(Shape{batch, channels});
  const float* input = x.data();
  float* output = output_.data();
  for_each_share(batch, x.size() >= kParallelMinElements, [=](int64_t first, int64_t end) {
    for (int64_t n = first; n < end; ++n) {
      float* mean = output + n * channels;
      std::fill_n(mean, channels, 0.0f);
      for (int64_t p = 0; p < pixels; ++p) {
        const float* values = input + (n * pixels + p) * channels;
        for (int64_t c = 0; c < channels; ++c) mean[c] += values[c];
      }
      for (int64_t c = 0; c < channels; ++c) mean[c] /= static_cast<float>(pixels);
    }
  });
  return output_;
}

// dx[n, h, w, c] = dy[n, c] / (height * width)
const Tensor& GlobalAveragePooling2D::backward(const Tensor& dy) {
  if (!(dy.shape() == output_.shape())) {
    throw ShapeError(describe() + " got an output gradient of " + dy.shape().str() + " for its output of " +
                     output_.shape().str());
  }
  const int64_t batch = dy.rows(), pixels = input_shape_[0] * input_shape_[1], channels = input_shape_[2];
  input_gradient_.resize(input_shape_.with_batch(batch));
  const float* gradient = dy.data();
  float* dx = input_gradient_.data();
  for_each_share(batch, input_gradient_.size() >= kParallelMinElements, [=](int64_t first, int64_t end) {
    const float scale = 1.0f / static_cast<float>(pixels);
    for (int64_t n = first; n < end; ++n) {
      for (int64_t p = 0; p < pixels; ++p) {
        float* target = dx + (n * pixels + p) * channels;
        for (int64_t c = 0; c < channels; ++c) target[c] = gradient[n * channels + c] * scale;
      }
    }
  });
  return input_gradient_;
}

}  // namespace kiln::layers
