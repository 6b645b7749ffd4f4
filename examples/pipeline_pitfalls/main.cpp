// Pipeline pitfalls: four mistakes that cost speed or silently change what the model learns, each
// run beside its fix, measured, and shown to the pipeline doctor (data::diagnose):
//   1. no prefetch: the training thread prepares every batch between its steps;
//   2. cache() after a random augmentation: every epoch sees the same "random" images;
//   3. a map parallelism larger than the machine: its threads take the cores training needs;
//   4. a shuffle buffer too small: the order barely changes.
// The Python the first pipeline mirrors:
//   ds = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x)).map(augment).batch(64)
//   model.fit(ds, epochs=3)            # the fix: .prefetch(tf.data.AUTOTUNE) at the end
// Build: scripts/build.sh   Run: build/bin/kiln-example-pipeline-pitfalls [SAMPLES] [EPOCHS]
//   (defaults: all 60000 training images, 4 epochs per run)
#include <kiln/kiln.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <string>
#include <vector>

using namespace kiln;

namespace {

// Per image: a random left-right flip, brightness and contrast, as in the article's augment().
// The images come as [28, 28]; the image ops take [height, width, channels].
LabeledData augment(LabeledData element) {
  element.x.reshape(Shape{28, 28, 1});
  Tensor image = image::random_flip_left_right(element.x, next_seed());
  image = image::random_brightness(image, 0.1f, next_seed());
  image = image::random_contrast(image, 0.8f, 1.2f, next_seed());
  image.reshape(Shape{28, 28});
  element.x = std::move(image);
  return element;
}

struct Run {
  double epoch_seconds = 0.0;  // the median epoch
  data::Diagnosis diagnosis;   // of the median epoch, with the notes of every epoch
  std::vector<double> pixel_sums;  // per epoch: the sum of every pixel trained on
};

// Trains a fresh model (the same seed every time) for `epochs` epochs on `dataset`.
Run train(const data::Dataset<LabeledData>& dataset, int epochs) {
  set_random_seed(1);
  Sequential model({layers::Flatten({28, 28}), layers::Dense(128, Activation::ReLU), layers::Dense(10, Activation::Softmax)});
  model.compile(optimizers::Adam(), losses::SparseCategoricalCrossentropy(), {metrics::Accuracy()});
  std::vector<data::Diagnosis> diagnoses;
  Run run;
  for (int epoch = 0; epoch < epochs; ++epoch) {
    auto iteration = dataset.iterate();
    double pixel_sum = 0.0;
    for (const LabeledData& batch : iteration) {
      model.train_on_batch(batch.x, batch.y);
      for (float pixel : batch.x.values()) pixel_sum += pixel;
    }
    diagnoses.push_back(data::diagnose(iteration));
    run.pixel_sums.push_back(pixel_sum);
  }
  std::vector<data::Diagnosis> by_time = diagnoses;
  std::sort(by_time.begin(), by_time.end(),
            [](const auto& a, const auto& b) { return a.times.epoch_seconds < b.times.epoch_seconds; });
  run.diagnosis = by_time[by_time.size() / 2];
  for (const data::Diagnosis& d : diagnoses) {
    for (const std::string& note : d.notes) {
      if (std::find(run.diagnosis.notes.begin(), run.diagnosis.notes.end(), note) == run.diagnosis.notes.end()) {
        run.diagnosis.notes.push_back(note);
      }
    }
  }
  run.epoch_seconds = run.diagnosis.times.epoch_seconds;
  return run;
}

void show(const char* title, const Run& pitfall, const Run& fixed) {
  std::printf("\n== %s\n%s", title, pitfall.diagnosis.text().c_str());
  std::printf("fixed: epoch %.3f s; measured %.2fx as fast", fixed.epoch_seconds, pitfall.epoch_seconds / fixed.epoch_seconds);
  if (!pitfall.diagnosis.advice.empty()) std::printf(", predicted %.2fx", pitfall.diagnosis.predicted_speedup());
  std::printf("\n");
}

// Mean distance between where an element starts and where a shuffle puts it.
double mean_displacement(int64_t elements, int64_t buffer_size) {
  double distance = 0.0;
  int64_t position = 0;
  for (int64_t index : data::range(elements).shuffle(buffer_size, /*seed=*/7)) {
    distance += std::abs(static_cast<double>(index - position++));
  }
  return distance / static_cast<double>(elements);
}

}  // namespace

int main(int argc, char** argv) {
  auto [train_set, unused_test_set] = datasets::load_idx(datasets::kFashionMnistDir);
  const int64_t samples = std::min<int64_t>(argc > 1 ? std::stoll(argv[1]) : train_set.x.rows(), train_set.x.rows());
  const int epochs = argc > 2 ? std::stoi(argv[2]) : 4;
  std::vector<int64_t> first_rows(static_cast<size_t>(samples));
  std::iota(first_rows.begin(), first_rows.end(), int64_t{0});
  const LabeledData images = data::gather_rows(train_set, first_rows);
  auto slices = data::from_tensor_slices(images.x, images.y);
  std::printf("%lld images, %d epochs per run, %lld cores\n", static_cast<long long>(samples), epochs,
              static_cast<long long>(data::available_cores()));

  // 1. No prefetch: batches are made on the training thread, between its steps.
  auto serial = slices.shuffle(samples).map(augment).batch(64);
  show("1. no prefetch", train(serial, epochs), train(serial.prefetch(AUTOTUNE), epochs));

  // 2. cache() after a random map keeps the first epoch's draws: each later epoch repeats them.
  const Run cached_after = train(slices.map(augment).cache().shuffle(samples).batch(64).prefetch(AUTOTUNE), epochs);
  const Run cached_before = train(slices.cache().shuffle(samples).map(augment).batch(64).prefetch(AUTOTUNE), epochs);
  show("2. cache() after a random augmentation", cached_after, cached_before);
  std::printf("sum of the pixels trained on, epoch by epoch: cache after the map");
  for (double sum : cached_after.pixel_sums) std::printf(" %.1f", sum);
  std::printf("; cache before it");
  for (double sum : cached_before.pixel_sums) std::printf(" %.1f", sum);
  std::printf("\n");

  // 3. Far more map threads than cores.
  const int64_t crowd = 8 * data::available_cores();
  show("3. map parallelism larger than the machine",
       train(slices.shuffle(samples).map(augment, crowd).batch(64).prefetch(AUTOTUNE), epochs),
       train(slices.shuffle(samples).map(augment, AUTOTUNE).batch(64).prefetch(AUTOTUNE), epochs));

  // 4. A shuffle buffer of 1% of the data: fast, and the order is nearly the input's.
  const int64_t small_buffer = std::max<int64_t>(1, samples / 100);
  show("4. a shuffle buffer too small", train(slices.shuffle(small_buffer).batch(64).prefetch(AUTOTUNE), epochs),
       train(slices.shuffle(samples).batch(64).prefetch(AUTOTUNE), epochs));
  std::printf("mean distance an image moves: %.0f places with shuffle(%lld), %.0f with shuffle(%lld)\n",
              mean_displacement(samples, small_buffer), static_cast<long long>(small_buffer),
              mean_displacement(samples, samples), static_cast<long long>(samples));
}
