// kiln-mnist — the main job: trains the reference model on Fashion-MNIST (or MNIST) and reports
// the test loss and accuracy.
//
// Model (--model, common/models.hpp): Flatten, Dense 128 relu, Dropout 0.2, Dense 10 softmax,
// batch 64; or Keras's MNIST convnet, batch 128. Adam; sparse categorical cross-entropy; the test
// set doubles as validation data, as in Keras's tutorials.
// Training batches come from tf.data's idiom, from_tensor_slices(x, y).shuffle(n).batch(64)
// .prefetch(AUTOTUNE), whose prefetch thread prepares the next batches while the model trains
// (--no-prefetch turns that off, to show the difference). Under mpirun, --distributed trains as
// one rank of the job (common/distributed_run.hpp, docs/scale-out.md).
// Errors print one line and exit non-zero: 2 for bad flags or missing data, 1 for anything else.
#include "common/arguments.hpp"
#include "common/distributed_run.hpp"
#include "common/run_app.hpp"
#include "common/idx_data.hpp"
#include "common/idx_batches.hpp"
#include "common/models.hpp"
#include "common/training_report.hpp"

#include <kiln/kiln.hpp>

#include <iostream>

namespace {

constexpr const char* kProgram = "kiln-mnist";

int run(int argc, char** argv) {
  using namespace kiln;
  apps::Arguments arguments(kProgram,
                            "Trains a small dense network (Flatten, Dense 128 relu, Dropout 0.2, Dense 10 softmax)\n"
                            "or a convnet on Fashion-MNIST or MNIST IDX files and prints the test loss and accuracy.");
  apps::add_idx_data_option(arguments);
  arguments.add_option("epochs", "N", "5", "passes over the training set");
  apps::add_model_option(arguments);
  arguments.add_option("batch-size", "N", "64 (dense), 128 (cnn)", "samples per training step");
  arguments.add_option("learning-rate", "RATE", "0.001", "Adam's learning rate");
  arguments.add_option("threads", "N", "all cores", "threads for the model's math");
  arguments.add_option("seed", "N", "random", "seed for weights, dropout and shuffling (same seed, same result)");
  apps::add_output_options(arguments);
  apps::add_callback_options(arguments);
  arguments.add_switch("no-prefetch", "prepare each batch only when training asks for it");
  apps::add_distributed_option(arguments);
  if (!arguments.parse(argc, argv)) return 0;  // --help was printed
  std::optional<distributed::Session> session;
  apps::start_distributed_if_requested(arguments, session, argc, argv);

  const std::string data_dir = arguments.text("data");
  if (!apps::idx_data_present(kProgram, data_dir)) return 2;
  const int epochs = static_cast<int>(arguments.integer_in("epochs", 1, apps::kMaxEpochs));
  const std::string model_name = arguments.text("model");
  apps::check_model_name(model_name);
  const int64_t batch_size = arguments.has("batch-size") ? arguments.integer_in("batch-size", 1, apps::kMaxBatchSize)
                                                         : apps::default_batch_size(model_name);
  apps::check_batch_size_shares_evenly(batch_size);
  const auto learning_rate = static_cast<float>(arguments.number("learning-rate"));
  if (arguments.has("threads")) set_num_threads(static_cast<int>(arguments.integer_in("threads", 1, apps::kMaxThreadsFlag)));
  apps::check_output_paths(arguments);
  const std::vector<Shared<Callback>> callbacks = apps::requested_callbacks(arguments);
  if (arguments.has("seed")) set_random_seed(static_cast<uint64_t>(arguments.integer("seed")));

  datasets::TrainTest data = datasets::load_idx(data_dir);
  if (data.train.x.rows() == 0) throw FileError("the training images in " + data_dir + " are an IDX set of 0 images");
  const Shape image_shape = data.train.x.shape().without_first_axis();
  std::cout << "Loaded " << data.train.x.rows() << " training and " << data.test.x.rows() << " test images of "
            << image_shape.str() << " from " << data_dir << "\n";
  const auto train = data::from_tensor_slices(std::move(data.train));
  const auto test = data::from_tensor_slices(std::move(data.test));

  Sequential model = apps::make_model(model_name, image_shape, 10);
  model.compile(optimizers::Adam(learning_rate), losses::SparseCategoricalCrossentropy(), {metrics::Accuracy()});
  model.summary();
  const int initial_epoch = apps::resume_if_requested(arguments, model);

  const History history =
      model.fit(apps::training_batches(train, batch_size, /*prefetch=*/!arguments.flag("no-prefetch")),
                {.epochs = epochs, .callbacks = callbacks, .validation_data = apps::evaluation_batches(test, batch_size),
                 .initial_epoch = initial_epoch});
  const Logs test_logs = model.evaluate(apps::evaluation_batches(test, batch_size), {.verbose = 0});
  std::printf("Test loss: %.4f - test accuracy: %.4f\n", test_logs.at("loss"), test_logs.at("accuracy"));
  apps::print_epoch_time(history, "thread");
  apps::write_requested_files(arguments, model, history, test_logs);
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return kiln::apps::run_app(kProgram, run, argc, argv); }
