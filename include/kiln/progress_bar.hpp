// kiln/progress_bar.hpp — the training progress bar, drawing the same lines as Keras 3's
// keras.utils.Progbar so a Keras user recognises it at once:
//   InPlace:      " 12/938 ━━━━━━━━━━━━━━━━━━━━ 1:05 2ms/step - accuracy: 0.8231 - loss: 0.5012"
//   EpochSummary: "938/938 - 2s - 2ms/step - accuracy: 0.8231 - loss: 0.5012"
// Leaves out the "Epoch 3/10" lines (the caller prints them) and the averaging Progbar does on
// its own: callers pass values that are already running means. One thread: the training loop.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

namespace kiln {

class ProgressBar {
 public:
  enum class Mode {
    InPlace,       // verbose=1 on a terminal: redrawn in place with '\r' (and colours), throttled
    EpochSummary,  // verbose=2 / not a terminal: only one line when the epoch finishes
  };
  using Clock = std::function<double()>;  // seconds, monotonic; injectable for tests

  // For a dataset whose length is not known yet: the bar shows "     12/Unknown" until the
  // final update, whose step count becomes the target (as Keras's ProgbarLogger does).
  static constexpr int64_t kUnknownTargetSteps = 0;
  static constexpr int kBarWidth = 20;                   // Keras's Progbar(width=20)
  static constexpr double kRedrawIntervalSeconds = 0.05;  // Keras's Progbar(interval=0.05)

  // Colours are on by default in InPlace mode only; EpochSummary lines never have any, like
  // Keras's verbose=2 lines.
  // Throws ValueError if target_steps is negative. The default clock is std::chrono::steady_clock.
  ProgressBar(int64_t target_steps, Mode mode, std::ostream& out, Clock clock = {});

  // Record that `current_step` steps are done with these running values; draws if due.
  // finalize=true draws the final line and ends it with '\n'.
  // Values are printed in the order given (Logs is sorted alphabetically; `val_` entries are
  // appended by the caller on the final update of an epoch).
  void update(int64_t current_step, const std::vector<std::pair<std::string, double>>& values,
              bool finalize = false);

  // Turn the ANSI colours (bold step count and time, green done part of the bar) on or off.
  void set_colors(bool enabled) { colors_ = enabled; }

  // True only for std::cout / std::cerr / std::clog attached to a terminal (isatty).
  static bool stream_is_terminal(std::ostream& out);

 private:
  double estimate_seconds_per_step(int64_t current_step, double now);
  std::string in_place_line(int64_t current_step,
                            const std::vector<std::pair<std::string, double>>& values,
                            bool finalize, double now, double seconds_per_step) const;
  std::string epoch_summary_line(int64_t current_step,
                                 const std::vector<std::pair<std::string, double>>& values,
                                 double now, double seconds_per_step) const;
  std::string paint(const std::string& text, const char* ansi_code) const;

  int64_t target_steps_;
  Mode mode_;
  std::ostream& out_;
  Clock clock_;
  bool colors_;
  double start_time_;
  std::optional<double> time_after_first_step_;  // the first step is slow (warm-up); leave it out
  std::optional<double> last_draw_time_;
  size_t previous_line_columns_ = 0;  // to blank out what a longer previous line left behind
};

// Keras's metric formatting: 4 decimals ("0.8231"), or %.4e when |v| <= 1e-3 ("1.2346e-04",
// and so "0.0000e+00" for zero, exactly as Keras prints it).
std::string format_progress_value(double v);

}  // namespace kiln
