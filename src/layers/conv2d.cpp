// Conv2D: im2col, one GEMM, and the same run backwards.
#include "kiln/layers/conv2d.hpp"

#include "kiln/error.hpp"
#include "kiln/gemm.hpp"
#include "kiln/parallel.hpp"
#include "kiln/random.hpp"

#include <algorithm>
#include <cmath>
#include <utility>

namespace kiln::layers {

Conv2D::Conv2D(int64_t filters, Size2D kernel_size, const Conv2DOptions& options)
    : Layer(options.input_shape), filters_(filters), activation_(options.activation), use_bias_(options.use_bias) {
  if (filters <= 0) throw ValueError("Conv2D needs a positive number of filters, got " + std::to_string(filters));
  check_positive(kernel_size, "Conv2D", "kernel_size");
  check_positive(options.strides, "Conv2D", "strides");
  window_.size = kernel_size;
  window_.strides = options.strides;
  window_.padding = options.padding;
}

Shape Conv2D::build(const Shape& input_shape) {
  const std::optional<Shape>& declared = declared_input_shape();
  if (declared && !(*declared == input_shape)) {
    throw ShapeError(describe() + " expects input of shape " + declared->str() + ", got " + input_shape.str());
  }
  if (input_shape.rank() != 3) {
    const std::string hint = input_shape.rank() == 2 ? " (for one channel, put Reshape({height, width, 1}) first)" : "";
    throw ShapeError(describe() + " expects images of height x width x channels, got " + input_shape.str() + hint);
  }
  window_.fit_to(input_shape[0], input_shape[1], describe());
  channels_ = input_shape[2];
  kernel_.shape = Shape{window_.size.height, window_.size.width, channels_, filters_};
  bias_.shape = Shape{filters_};
  return Shape{window_.output_height, window_.output_width, filters_};
}

std::vector<Parameter*> Conv2D::parameters() {
  if (use_bias_) return {&kernel_, &bias_};
  return {&kernel_};
}

// Glorot uniform, Keras's default: U(-limit, limit), limit = sqrt(6 / (fan_in + fan_out)), where
// each output sees fan_in = kh * kw * channels inputs and each input reaches fan_out = kh * kw * filters outputs.
void Conv2D::initialize(uint64_t seed) {
  Rng rng(seed);
  const int64_t area = window_.size.height * window_.size.width;
  const float limit = std::sqrt(6.0f / static_cast<float>(area * channels_ + area * filters_));
  for (int64_t i = 0; i < kernel_.size(); ++i) kernel_.value[i] = rng.uniform(-limit, limit);
  if (use_bias_) std::fill_n(bias_.value, bias_.size(), 0.0f);
}

// P[(n, oh, ow), (i, j, c)] = x[n, oh * sh - pad_top + i, ow * sw - pad_left + j, c], or 0 where
// that falls outside the image (same padding). A window row inside the image is kw * channels
// consecutive floats of x, copied in one go. Samples are shared out to the team.
void Conv2D::gather_patches(const Tensor& x) {
  const Window2D w = window_;
  const int64_t batch = x.rows(), channels = channels_, patch_size = this->patch_size();
  patches_.resize(Shape{batch * w.output_height * w.output_width, patch_size});
  const float* input = x.data();
  float* patches = patches_.data();
  for_each_share(batch, patches_.size() >= kParallelMinElements, [=](int64_t first, int64_t end) {
    const int64_t kernel_row = w.size.width * channels;
    for (int64_t n = first; n < end; ++n) {
      const float* image = input + n * w.input_height * w.input_width * channels;
      float* patch = patches + n * w.output_height * w.output_width * patch_size;
      for (int64_t oh = 0; oh < w.output_height; ++oh) {
        for (int64_t ow = 0; ow < w.output_width; ++ow, patch += patch_size) {
          const int64_t left = ow * w.strides.width - w.pad_left;
          const bool columns_inside = left >= 0 && left + w.size.width <= w.input_width;
          for (int64_t i = 0; i < w.size.height; ++i) {
            const int64_t ih = oh * w.strides.height - w.pad_top + i;
            float* destination = patch + i * kernel_row;
            if (ih < 0 || ih >= w.input_height) {
              std::fill_n(destination, kernel_row, 0.0f);
            } else if (columns_inside) {
              // A plain loop, not std::copy_n: a first layer's row is a few floats, too short for a call to memmove.
              const float* source = image + (ih * w.input_width + left) * channels;
              for (int64_t k = 0; k < kernel_row; ++k) destination[k] = source[k];
            } else {
              for (int64_t j = 0; j < w.size.width; ++j) {
                const int64_t iw = left + j;
                if (iw < 0 || iw >= w.input_width) {
                  std::fill_n(destination + j * channels, channels, 0.0f);
                } else {
                  std::copy_n(image + (ih * w.input_width + iw) * channels, channels, destination + j * channels);
                }
              }
            }
          }
        }
      }
    }
  });
}

// x: [batch, height, width, channels] -> y = f(P K + b): [batch, out_h, out_w, filters]
const Tensor& Conv2D::forward(const Tensor& x, bool /*training*/) {
  if (x.rank() != 4 || x.dim(1) != window_.input_height || x.dim(2) != window_.input_width || x.dim(3) != channels_) {
    throw ShapeError(describe() + " expects images of " + Shape{window_.input_height, window_.input_width, channels_}.str() +
                     ", got " + x.shape().without_first_axis().str());
  }
  const int64_t batch = x.rows();
  gather_patches(x);
  output_pixels_.resize(Shape{batch * window_.output_height * window_.output_width, filters_});
  MatrixMap y = output_pixels_.matrix();
  gemm(std::as_const(patches_).matrix(), Operand::AsIs, ConstMatrixMap(kernel_.value, patch_size(), filters_), Operand::AsIs, y);
  activation_forward(activation_, y, use_bias_ ? bias_.value : nullptr);  // softmax, if asked, along the filters
  output_.view(output_pixels_, Shape{batch, window_.output_height, window_.output_width, filters_});
  return output_;
}

// dy: [batch, out_h, out_w, filters] -> dz = f'(z) * dy on Y's rows, then as below
const Tensor& Conv2D::backward(const Tensor& dy) {
  if (!(dy.shape() == output_.shape())) {
    throw ShapeError(describe() + " got an output gradient of " + dy.shape().str() + " for its output of " +
                     output_.shape().str());
  }
  output_gradient_pixels_.view(dy, output_pixels_.shape());
  activation_backward(activation_, output_pixels_, output_gradient_pixels_, preactivation_gradient_);
  return backward_from_preactivation(preactivation_gradient_);
}

// With Y = P K + b, row by row exactly Dense's z = x W + b (dense.cpp has the derivation):
//   dK = P^T dz                 [kh * kw * channels, filters]
//   db = sum over rows of dz    [filters]
//   dP = dz K^T                 P's shape
// and since P only copies x, each x element's gradient is the sum of dP over every patch entry
// that copied it: col2im, below. Skipped for a model's first layer (no one needs its dx).
const Tensor& Conv2D::backward_from_preactivation(const Tensor& dz) {
  const int64_t pixels = output_pixels_.rows();
  if (dz.size() != pixels * filters_) {
    throw ShapeError(describe() + " got a gradient of " + dz.shape().str() + " for its output of " + output_.shape().str());
  }
  const ConstMatrixMap dz_pixels(dz.data(), pixels, filters_);
  gemm(std::as_const(patches_).matrix(), Operand::Transposed, dz_pixels, Operand::AsIs, MatrixMap(kernel_.gradient, patch_size(), filters_));
  if (use_bias_) sum_over_rows(dz.data(), pixels, filters_, bias_.gradient);
  if (!input_gradient_needed()) return input_gradient_;
  // dP goes over P: once dK is taken nothing reads P until the next forward, and P is the
  // layer's largest buffer (kh * kw times its input), so a second one would double its memory.
  gemm(dz_pixels, Operand::AsIs, ConstMatrixMap(kernel_.value, patch_size(), filters_), Operand::Transposed, patches_.matrix());
  scatter_patch_gradients(output_.rows());
  return input_gradient_;
}

// col2im: dx[n, ih, iw, c] = sum of dP (in patches_ by now) over the patch entries that
// gather_patches copied from x[n, ih, iw, c]. Each sample's sums stay within that sample, so
// samples are shared out to the team and every sum is added in the same order whatever the
// thread count.
void Conv2D::scatter_patch_gradients(int64_t batch) {
  const Window2D w = window_;
  const int64_t channels = channels_, patch_size = this->patch_size();
  input_gradient_.resize(Shape{batch, w.input_height, w.input_width, channels});
  const float* gradients = patches_.data();
  float* dx = input_gradient_.data();
  for_each_share(batch, patches_.size() >= kParallelMinElements, [=](int64_t first, int64_t end) {
    const int64_t image_size = w.input_height * w.input_width * channels;
    for (int64_t n = first; n < end; ++n) {
      float* image = dx + n * image_size;
      std::fill_n(image, image_size, 0.0f);
      const float* patch = gradients + n * w.output_height * w.output_width * patch_size;
      for (int64_t oh = 0; oh < w.output_height; ++oh) {
        for (int64_t ow = 0; ow < w.output_width; ++ow, patch += patch_size) {
          for (int64_t i = 0; i < w.size.height; ++i) {
            const int64_t ih = oh * w.strides.height - w.pad_top + i;
            if (ih < 0 || ih >= w.input_height) continue;
            for (int64_t j = 0; j < w.size.width; ++j) {
              const int64_t iw = ow * w.strides.width - w.pad_left + j;
              if (iw < 0 || iw >= w.input_width) continue;
              float* target = image + (ih * w.input_width + iw) * channels;
              const float* source = patch + (i * w.size.width + j) * channels;
              for (int64_t c = 0; c < channels; ++c) target[c] += source[c];
            }
          }
        }
      }
    }
  });
}

}  // namespace kiln::layers
