// The pipeline doctor's rules: the first that applies gives the advice, and every note applies.
#include "kiln/data/diagnose.hpp"

#include <algorithm>
#include <cstdio>

namespace kiln::data {
namespace {

std::string format(const char* pattern, auto... values) {
  char text[512];
  std::snprintf(text, sizeof text, pattern, values...);
  return text;
}

bool is_map(const StageReport& stage) { return stage.name == "map"; }

// A stage of a pipeline, as people wrote it: "map (1 thread)", "map (AUTOTUNE, 2 threads)".
std::string describe(const StageReport& stage) {
  if (!is_map(stage)) return stage.name;
  const int64_t threads = std::max<int64_t>(1, stage.parallelism);
  return format("map (%s%lld thread%s)", stage.autotuned ? "AUTOTUNE, " : "", static_cast<long long>(threads),
                threads == 1 ? "" : "s");
}

// A source whose elements come from outside kiln's memory: a generator reads them.
bool reads_from_outside(const StageReport& stage) { return stage.name == "from_generator"; }

// Two stretches of work on two threads: the shorter hides behind the longer as far as a second
// core is free for it (none on one core, all of it on two or more).
double overlapped(double first, double second, double cores) {
  const double hidden_share = std::clamp(cores - 1.0, 0.0, 1.0);
  return std::max(first, second) + std::min(first, second) * (1.0 - hidden_share);
}

// The stage with the most time of its own. A stage's busy time includes the wait for its input,
// the next stage in the list, except a parallel map's (its workers time only the function) and a
// prefetch's (all of its input's time, on its own thread).
const StageReport& slowest_stage(const std::vector<StageReport>& stages) {
  size_t slowest = stages.size() - 1;
  double slowest_seconds = -1.0;
  for (size_t i = 0; i < stages.size(); ++i) {
    const StageReport& stage = stages[i];
    double own = stage.busy_seconds;
    if (stage.name == "prefetch") {
      own = 0.0;
    } else if (is_map(stage) && stage.parallelism > 0) {
      own = stage.busy_seconds / static_cast<double>(stage.parallelism);
    } else if (i + 1 < stages.size()) {
      own = std::max(0.0, stage.busy_seconds - stages[i + 1].busy_seconds);
    }
    if (own > slowest_seconds) {
      slowest = i;
      slowest_seconds = own;
    }
  }
  return stages[slowest];
}

}  // namespace

Diagnosis diagnose(const std::vector<StageReport>& stages, const ConsumerTimes& times, int64_t cores) {
  Diagnosis d;
  d.times = times;
  const double epoch = times.epoch_seconds;
  const double input = std::min(times.input_seconds, epoch);
  const double training = epoch - input;  // T
  d.cores = static_cast<double>(std::max<int64_t>(1, cores));
  if (times.machine_busy_seconds >= 0.0 && epoch > 0.0) {
    const double used_elsewhere = std::max(0.0, times.machine_busy_seconds - times.process_cpu_seconds) / epoch;
    d.cores = std::clamp(d.cores - used_elsewhere, 1.0, d.cores);
  }
  d.input_bound = epoch > 0.0 ? input / epoch : 0.0;
  d.predicted_epoch_seconds = epoch;
  d.bound_by = "training";

  const StageReport* slowest_map = nullptr;  // the map that spent the most time on its elements
  const StageReport* crowded_map = nullptr;  // a map with more threads than the machine has cores
  bool map_below = false;                    // a map upstream of the stage being looked at
  for (auto stage = stages.rbegin(); stage != stages.rend(); ++stage) {  // from the source up
    if (is_map(*stage)) {
      if (!slowest_map || stage->busy_seconds > slowest_map->busy_seconds) slowest_map = &*stage;
      if (stage->parallelism > cores && !crowded_map) crowded_map = &*stage;
      map_below = true;
    }
    if (stage->name == "cache" && map_below) {
      d.notes.push_back(
          "cache() stores what the map before it made: if that map is random (an augmentation), every epoch "
          "sees the same draws; cache before the random map, after the loading");
    }
    if (stage->name == "shuffle" && stage->buffer_capacity > 0 &&
        static_cast<double>(stage->buffer_capacity) < kSmallShuffleShare * static_cast<double>(stage->elements_produced)) {
      d.notes.push_back(format(
          "shuffle(%lld) holds %.1f%% of the %lld elements it shuffles, so an element moves only about %lld places; "
          "shuffle(%lld) mixes them all (over rows of arrays it costs no more)",
          static_cast<long long>(stage->buffer_capacity),
          100.0 * static_cast<double>(stage->buffer_capacity) / static_cast<double>(stage->elements_produced),
          static_cast<long long>(stage->elements_produced), static_cast<long long>(stage->buffer_capacity),
          static_cast<long long>(stage->elements_produced)));
    }
  }
  const bool prefetched = !stages.empty() && stages.front().name == "prefetch";
  const bool cached = std::any_of(stages.begin(), stages.end(), [](const StageReport& s) { return s.name == "cache"; });

  // 1. More map threads than cores: past the cores, each thread only takes time slices from
  //    training's threads, which then wait for each other at every barrier of a step. With
  //    AUTOTUNE the map uses the cores training leaves idle, and training takes the time its
  //    thread ran (without that figure, the process's CPU time over the cores is a floor).
  if (crowded_map) {
    d.bound_by = describe(*crowded_map);
    d.advice = format("map(..., AUTOTUNE) instead of %lld threads on %lld cores",
                      static_cast<long long>(crowded_map->parallelism), static_cast<long long>(cores));
    const double training_on_core = std::clamp(times.consumer_cpu_seconds, 0.0, training);
    d.predicted_epoch_seconds = times.consumer_cpu_seconds >= 0.0 ? training_on_core + input
                                                                  : std::max(times.process_cpu_seconds / d.cores, input);
    return d;
  }
  if (d.input_bound < kInputBoundShare) return d;
  if (stages.empty()) {
    d.bound_by = "the input";
    return d;
  }

  // 2. No prefetch: the consumer prepares every element itself, between its steps. With
  //    prefetch(AUTOTUNE) a thread of its own does it while the consumer trains.
  if (!prefetched) {
    d.bound_by = slowest_map ? describe(*slowest_map) + ", on the training thread" : "the input, on the training thread";
    d.advice = "add .prefetch(AUTOTUNE) as the last step";
    d.predicted_epoch_seconds = overlapped(training, input, d.cores);
    return d;
  }

  // 3. A fixed prefetch buffer whose producer keeps up on average (its busy time no more than
  //    training's) and still leaves the consumer waiting: the input comes in bursts, and a deeper
  //    buffer (AUTOTUNE deepens it where the consumer starves) lets the two overlap in full.
  const StageReport& front = stages.front();
  if (!front.autotuned && front.busy_seconds <= training) {
    d.bound_by = format("prefetch(%lld): bursts of input", static_cast<long long>(front.buffer_capacity));
    d.advice = "prefetch(AUTOTUNE), or a larger buffer";
    d.predicted_epoch_seconds = overlapped(training, front.busy_seconds, d.cores);
    return d;
  }

  // 4. Prefetched, and still waiting: the stage that takes longest cannot keep up. A map on one
  //    thread that is not tuned can use every core training leaves idle.
  if (slowest_map && slowest_map->parallelism <= 1 && !slowest_map->autotuned) {
    d.bound_by = describe(*slowest_map);
    d.advice = "map(..., AUTOTUNE): its elements on every core training leaves idle";
    d.predicted_epoch_seconds = std::max(training, slowest_map->busy_seconds / d.cores);
    return d;
  }

  // 5. A map of single elements feeding batch(): one call, and one tensor made and stacked, per
  //    element. Batched first, a map whose function takes a whole batch makes one call per
  //    batch. How much of its time is that per-element cost the figures cannot tell, so the
  //    prediction is the best case: the input wholly hidden, the epoch training alone.
  for (size_t i = 0; i + 1 < stages.size(); ++i) {
    const StageReport& map = stages[i + 1];
    if (stages[i].name == "batch" && is_map(map) && map.elements_produced >= 4 * std::max<int64_t>(1, stages[i].elements_produced)) {
      d.bound_by = describe(map) + ", one element at a time";
      d.advice = "batch() before the map, and map whole batches (vectorised)";
      d.predicted_epoch_seconds = training;
      return d;
    }
  }

  // 6. Elements read from outside, every epoch again: done once and kept in memory, they are
  //    nearly free after the first epoch, and the epoch is training alone.
  const StageReport& slowest = slowest_stage(stages);
  d.bound_by = describe(slowest);
  if (reads_from_outside(slowest) && !cached) {
    d.advice = "cache() after the loading (before any random map), if the data fits in memory";
    d.predicted_epoch_seconds = training;
  }
  // Otherwise the pipeline already has the cores training leaves (an AUTOTUNE map), or its cost is
  // in work no reordering removes: only a cheaper map or a faster model would help.
  return d;
}

std::string Diagnosis::one_line() const {
  std::string line = format("pipeline: input %.0f%% of the epoch, bound by %s", 100.0 * input_bound, bound_by.c_str());
  if (!advice.empty()) line += format("; try %s (predicted %.2fx as fast)", advice.c_str(), predicted_speedup());
  return line;
}

std::string Diagnosis::text() const {
  std::string text = format("epoch %.3f s: input %.3f s (%.0f%%), training %.3f s, CPU %.3f s on %.1f cores\n",
                            times.epoch_seconds, times.input_seconds, 100.0 * input_bound,
                            times.epoch_seconds - times.input_seconds, times.process_cpu_seconds, cores);
  if (times.consumer_cpu_seconds >= 0.0) {
    text += format("the consumer's thread ran on a core %.3f s of the epoch\n", times.consumer_cpu_seconds);
  }
  text += "bound by: " + bound_by + "\n";
  if (advice.empty()) {
    text += input_bound < kInputBoundShare ? "advice: none; the input keeps up\n"
                                           : "advice: none that reorders the pipeline; a cheaper map or a faster model would help\n";
  } else {
    text += format("advice: %s\npredicted: epoch %.3f s, %.2fx as fast\n", advice.c_str(), predicted_epoch_seconds,
                   predicted_speedup());
  }
  for (const std::string& note : notes) text += "note: " + note + "\n";
  return text;
}

}  // namespace kiln::data
