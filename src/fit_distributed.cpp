// Sequential's side of a distributed fit (distributed.hpp, docs/scale-out.md): how the ranks
// agree on a step, average their gradients, and average their figures and moving statistics. The
// epoch loop that calls these is train() in fit.cpp; every function here is a collective call,
// made by every rank at the same point.
#include "kiln/model.hpp"

#include "kiln/distributed.hpp"
#include "kiln/error.hpp"
#include "kiln/interrupt.hpp"

#include <algorithm>
#include <climits>
#include <exception>
#include <span>
#include <string>
#include <vector>

namespace kiln {

namespace {

// A failure on some ranks ends the step on all of them, with the message of the lowest failing
// rank: that rank (and any other that failed) rethrows its own exception, the others an Error
// that quotes it.
[[noreturn]] void throw_shared_failure(const std::exception_ptr& failure) {
  const int root = distributed::allreduce_min(failure ? distributed::rank() : INT_MAX);
  std::string message = failure ? message_of(failure) : std::string();
  distributed::broadcast(message, root);
  if (failure) std::rethrow_exception(failure);
  throw Error("rank " + std::to_string(root) + " of " + std::to_string(distributed::size()) + " stopped training: " + message);
}

}  // namespace

Sequential::StepAgreement Sequential::agree_on_step(const LocalStep& local, double loss_sum, int64_t samples_seen) {
  // One small allreduce of these sums, between the forward pass and the backward: whether every
  // rank has a batch, whether any failed or met a non-finite loss or a Ctrl-C, the step's rows
  // (which weigh each rank's gradient), and the running loss and metrics.
  enum : size_t { kHasBatch, kFailed, kNotFinite, kInterrupted, kRows, kLossSum, kSamplesSeen, kMetrics };
  std::vector<double> sums(kMetrics + metrics_.size(), 0.0);
  sums[kHasBatch] = local.batch ? 1.0 : 0.0;
  sums[kFailed] = local.failure ? 1.0 : 0.0;
  sums[kNotFinite] = local.finite ? 0.0 : 1.0;
  sums[kInterrupted] = StopOnInterrupt::requested() ? 1.0 : 0.0;
  sums[kRows] = local.batch && !local.failure ? static_cast<double>(local.batch->x.rows()) : 0.0;
  sums[kLossSum] = loss_sum;
  sums[kSamplesSeen] = static_cast<double>(samples_seen);
  if (samples_seen > 0) {
    for (size_t i = 0; i < metrics_.size(); ++i) sums[kMetrics + i] = metrics_[i]->result() * static_cast<double>(samples_seen);
  }
  distributed::allreduce_sum(sums);
  if (sums[kFailed] > 0) throw_shared_failure(local.failure);

  StepAgreement agreement;
  agreement.ended = sums[kHasBatch] < distributed::size();
  agreement.finite = sums[kNotFinite] == 0;
  agreement.interrupted = sums[kInterrupted] > 0;
  agreement.rows = static_cast<int64_t>(sums[kRows]);
  const double seen = sums[kSamplesSeen];
  agreement.loss = seen > 0 ? sums[kLossSum] / seen : local.loss;
  for (size_t i = 0; i < metrics_.size(); ++i) agreement.metric_results.push_back(seen > 0 ? sums[kMetrics + i] / seen : 0.0);
  return agreement;
}

bool Sequential::sum_gradients_over_ranks(int64_t rows, int64_t total_rows) {
  // Each rank's loss is the mean over its own samples. Its gradient, weighted by the rank's share
  // of the step's samples, makes the ranks' gradients add up to the mean over the step's whole
  // batch. Backward is linear in the loss gradient, so the weight goes on that [rows, outputs]
  // tensor before backward rather than on the whole arena after it.
  if (rows == 0) {
    std::fill(parameter_gradients_.begin(), parameter_gradients_.end(), 0.0f);
  } else {
    if (rows != total_rows) {
      const float share = static_cast<float>(rows) / static_cast<float>(total_rows);
      for (float& gradient : loss_gradient_.values()) gradient *= share;
    }
    backward_from_loss();
  }
  distributed::allreduce_sum(parameter_gradients_);
  // Every rank holds the same sum, so every rank decides alike whether the step is applied.
  return gradients_finite();
}

void Sequential::average_epoch_state(Logs& logs) {
  // input_wait is each rank's own share of its epoch: the mean says how input-bound the job was.
  std::vector<double> input_wait{logs["input_wait"]};
  distributed::allreduce_sum(input_wait);
  logs["input_wait"] = input_wait[0] / distributed::size();
  // Non-trainable parameters (BatchNormalization's moving statistics) follow each rank's own
  // batches: their mean over the ranks keeps one model on every rank.
  const float inverse_ranks = 1.0f / static_cast<float>(distributed::size());
  for (Shared<Layer>& layer : layers_) {
    for (Parameter* parameter : layer->parameters()) {
      if (parameter->trainable) continue;
      const std::span<float> values(parameter->value, static_cast<size_t>(parameter->size()));
      distributed::allreduce_sum(values);
      for (float& value : values) value *= inverse_ranks;
    }
  }
}

Logs Sequential::average_over_ranks(double loss_sum, int64_t samples_seen) {
  // Each rank's loss and metrics are means over its own samples: weighted by them, summed and
  // divided by every rank's samples, they are the means over all the data.
  std::vector<double> sums{static_cast<double>(samples_seen), loss_sum};
  for (const Shared<Metric>& metric : metrics_) sums.push_back(samples_seen > 0 ? metric->result() * static_cast<double>(samples_seen) : 0.0);
  distributed::allreduce_sum(sums);
  const double samples = sums[0];
  Logs logs;
  if (samples == 0) return logs;
  logs["loss"] = sums[1] / samples;
  for (size_t i = 0; i < metrics_.size(); ++i) logs[metrics_[i]->name()] = sums[2 + i] / samples;
  return logs;
}

void Sequential::set_first_sample(int64_t first) {
  for (Shared<Layer>& layer : layers_) layer->set_first_sample(first);
}

}  // namespace kiln
