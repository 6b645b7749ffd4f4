// kiln/data/diagnose.hpp — the pipeline doctor: how input-bound an epoch was, which stage bounds
// the input, and the one change that would help most, with the epoch time it predicts.
//
//   auto iteration = dataset.iterate();
//   for (auto& batch : iteration) train_on(batch);
//   std::cout << data::diagnose(iteration).text();
//
// It reads what the iteration measured: the consumer's time inside next() (input it waited for or
// prepared itself), the rest of the epoch (the consumer's own work: training), the process's CPU
// time, and each stage's figures (stats.hpp). fit prints its one-line form after the first epoch.
//
// Each prediction is the epoch after the change, from what the change moves where:
//  - prefetch: the input moves to a thread of its own, so training (T) and input (I) overlap as
//    far as a second core is free: max(T, I), up to T + I on one core;
//  - a deeper prefetch buffer, when its producer keeps up on average: training and the
//    producer's time overlap, max(T, P);
//  - a map on one thread made parallel: its time spreads over the free cores, but the epoch is
//    never shorter than training alone;
//  - batch() before a map of single elements: the best case, training alone (the figures cannot
//    tell how much of the map's time is its per-element cost);
//  - cache: after the first epoch the input is nearly free, and the epoch is training alone;
//  - fewer map threads: training gets its cores back. Its thread then trains in the time it
//    actually ran on a core (its CPU time, which the map's threads do not inflate: they take the
//    core away, they do not add work), and the wait for input stays as it is.
// The free cores are those the process may run on less what other processes used meanwhile (the
// machine's busy time less the process's own): on a shared machine the prediction shrinks.
#pragma once

#include "kiln/data/stats.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace kiln::data {

// What the consumer of one iteration measured, and the process's CPU time over the same span.
struct ConsumerTimes {
  double epoch_seconds = 0.0;        // from the first call of next() to the last return
  double input_seconds = 0.0;        // inside next(): waiting for input, or preparing it inline
  double process_cpu_seconds = 0.0;  // every thread of the process, over the same span
  double machine_busy_seconds = -1.0;  // every core of the machine over the span; -1: unknown
  double consumer_cpu_seconds = -1.0;  // the consumer's own thread on a core; -1: unknown
};

struct Diagnosis {
  ConsumerTimes times;
  double cores = 1.0;                // the free cores: see above
  double input_bound = 0.0;          // input_seconds / epoch_seconds
  std::string bound_by;              // "training", or the stage that holds the input back
  std::string advice;                // the one change that would help most; empty if none would
  double predicted_epoch_seconds = 0.0;
  std::vector<std::string> notes;    // what speed does not show: an order that barely changes, ...

  double predicted_speedup() const {
    return predicted_epoch_seconds > 0.0 ? times.epoch_seconds / predicted_epoch_seconds : 1.0;
  }
  std::string text() const;      // a few lines for people
  std::string one_line() const;  // fit's line after the first epoch
};

// Training is input-bound once input takes this share of the epoch.
inline constexpr double kInputBoundShare = 0.10;
// A shuffle buffer smaller than this share of the elements it shuffles barely changes their order.
inline constexpr double kSmallShuffleShare = 0.10;

// The doctor itself, on figures: `stages` consumer-facing first, as PipelineStats::report() gives them.
Diagnosis diagnose(const std::vector<StageReport>& stages, const ConsumerTimes& times, int64_t cores);

}  // namespace kiln::data
