// Data-parallel training on several processes: the same model on every rank, each rank its shard
// of every batch, one allreduce of the gradients per step. Keras does this with
// tf.distribute.MultiWorkerMirroredStrategy; kiln with a distributed::Session under mpirun.
//
// Build: scripts/build.sh -DKILN_MPI=ON
// Run:   mpirun -np 2 build/bin/kiln-example-distributed-fit [EPOCHS]   (default 2)
#include <kiln/kiln.hpp>

#include <cstdio>
#include <string>

using namespace kiln;

int main(int argc, char** argv) {
  distributed::Session session(argc, argv);  // MPI for as long as main runs
  set_random_seed(1);                         // on every rank alike, as every rank runs main
  const int epochs = argc > 1 ? std::stoi(argv[1]) : 2;
  const int64_t ranks = distributed::size(), rank = distributed::rank();
  constexpr int64_t kJobBatch = 128;  // samples per step, all ranks together

  auto [train, test] = datasets::load_idx(datasets::kFashionMnistDir);
  // Every rank shuffles alike (the Session gave them one random state), then keeps its shard, in
  // batches of its share of the job's batch: together the ranks' batches are one process's batch.
  auto batches = data::from_tensor_slices(train.x, train.y)
                     .shuffle(train.x.rows())
                     .shard(ranks, rank)
                     .batch(kJobBatch / ranks)
                     .prefetch(AUTOTUNE);
  auto test_batches = data::from_tensor_slices(test.x, test.y).shard(ranks, rank).batch(kJobBatch / ranks);

  Sequential model({layers::Flatten({28, 28}), layers::Dense(128, Activation::ReLU), layers::Dropout(0.2f),
                    layers::Dense(10, Activation::Softmax)});
  model.compile(optimizers::Adam(), losses::SparseCategoricalCrossentropy(), {metrics::Accuracy()});
  // Rank 0 shows the progress bar; the logs are averaged over the ranks.
  model.fit(batches, {.epochs = epochs, .verbose = 2});
  // Each rank evaluates its shard of the test set; evaluate averages the ranks' figures.
  const Logs logs = model.evaluate(test_batches, {.verbose = 0});
  if (distributed::is_chief()) {
    std::printf("%lld ranks: test loss %.4f - test accuracy %.4f\n", static_cast<long long>(ranks), logs.at("loss"),
                logs.at("accuracy"));
    model.save_weights("distributed.weights.npz");  // one file, from rank 0
  }
}
