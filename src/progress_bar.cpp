// progress_bar.cpp — builds keras.utils.Progbar's lines (Keras 3); contract in progress_bar.hpp.
//
// Formats follow Keras's source: ETA truncated to whole seconds ("59s", "1:05", "1:02:05"),
// elapsed time and time per step rounded ("2s", "2ms/step"), values via format_progress_value.
#include "kiln/progress_bar.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>

#include "kiln/error.hpp"

#if defined(_WIN32)
#include <io.h>
#else
#include <unistd.h>
#endif

namespace kiln {
namespace {

// The ANSI codes Keras uses: bold count and time, green done cells, white (37) remaining cells.
constexpr const char* kBold = "\x1b[1m";
constexpr const char* kGreen = "\x1b[32m";
constexpr const char* kWhite = "\x1b[37m";
constexpr const char* kReset = "\x1b[0m";
constexpr const char* kBarCell = "━";  // U+2501: one column on screen, three bytes in UTF-8

// printf into a std::string, sized first: "%.4f" of 1e300 needs more than any fixed buffer.
std::string format_number(const char* format, double value) {
  const int length = std::snprintf(nullptr, 0, format, value);
  std::string text(static_cast<size_t>(length) + 1, '\0');
  std::snprintf(text.data(), text.size(), format, value);
  text.resize(static_cast<size_t>(length));
  return text;
}

std::string pad_left(const std::string& text, size_t width) {
  return text.size() >= width ? text : std::string(width - text.size(), ' ') + text;
}

std::string repeat(const char* piece, int times) {
  std::string text;
  for (int i = 0; i < times; ++i) text += piece;
  return text;
}

// Columns a line takes on screen: ANSI codes take none, a UTF-8 character takes one.
size_t display_columns(const std::string& line) {
  size_t columns = 0;
  for (size_t i = 0; i < line.size(); ++i) {
    if (line[i] == '\x1b') {
      while (i < line.size() && line[i] != 'm') ++i;
    } else if ((static_cast<unsigned char>(line[i]) & 0xC0) != 0x80) {
      ++columns;
    }
  }
  return columns;
}

// Keras prints the ETA with Python's %d, which truncates: 59.9 s left shows as "59s".
std::string format_eta(double seconds) {
  const int64_t whole = static_cast<int64_t>(seconds);
  char text[48];
  if (seconds > 3600) {
    std::snprintf(text, sizeof text, "%lld:%02lld:%02lld", static_cast<long long>(whole / 3600),
                  static_cast<long long>(whole % 3600 / 60), static_cast<long long>(whole % 60));
  } else if (seconds > 60) {
    std::snprintf(text, sizeof text, "%lld:%02lld", static_cast<long long>(whole / 60),
                  static_cast<long long>(whole % 60));
  } else {
    std::snprintf(text, sizeof text, "%llds", static_cast<long long>(whole));
  }
  return text;
}

// Elapsed time is rounded, not truncated (Keras uses "{:.0f}s").
std::string format_elapsed(double seconds) { return format_number("%.0fs", seconds); }

// Zero means "no step timed yet" and shows as "0s/step", as in Keras.
std::string format_time_per_step(double seconds) {
  if (seconds >= 1 || seconds == 0) return format_number("%.0fs/step", seconds);
  if (seconds >= 1e-3) return format_number("%.0fms/step", seconds * 1e3);
  return format_number("%.0fus/step", seconds * 1e6);
}

std::string format_values(const std::vector<std::pair<std::string, double>>& values) {
  std::string text;
  for (const auto& [name, value] : values) {
    text += " - " + name + ": " + format_progress_value(value);
  }
  return text;
}

bool file_descriptor_is_terminal(int file_descriptor) {
#if defined(_WIN32)
  return _isatty(file_descriptor) != 0;
#else
  return isatty(file_descriptor) != 0;
#endif
}

double steady_clock_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

std::string format_progress_value(double v) {
  if (std::isnan(v)) return "nan";  // printf may say "-nan"; Python always says "nan"
  return format_number(std::abs(v) > 1e-3 ? "%.4f" : "%.4e", v);
}

ProgressBar::ProgressBar(int64_t target_steps, Mode mode, std::ostream& out, Clock clock)
    : target_steps_(target_steps),
      mode_(mode),
      out_(out),
      clock_(clock ? std::move(clock) : Clock(steady_clock_seconds)),
      colors_(mode == Mode::InPlace),
      start_time_(clock_()) {
  if (target_steps < 0) {
    throw ValueError("ProgressBar expects a target of at least 1 step, or 0 when the number of "
                     "steps is not known yet; got " + std::to_string(target_steps));
  }
}

void ProgressBar::update(int64_t current_step,
                         const std::vector<std::pair<std::string, double>>& values, bool finalize) {
  // Keras's verbose=2 bar is only ever called at the end of the epoch, so its time per step is
  // the whole epoch divided by the steps. Ignoring earlier calls keeps that number the same.
  if (mode_ == Mode::EpochSummary && !finalize) return;

  const double now = clock_();
  if (finalize && target_steps_ == kUnknownTargetSteps) target_steps_ = current_step;
  // Timed on every call, drawn or not, so a skipped first step still counts as the warm-up.
  const double seconds_per_step = estimate_seconds_per_step(current_step, now);

  if (mode_ == Mode::EpochSummary) {
    out_ << epoch_summary_line(current_step, values, now, seconds_per_step) << '\n';
    out_.flush();
    return;
  }

  const bool redraw_due =
      finalize || !last_draw_time_ || now - *last_draw_time_ >= kRedrawIntervalSeconds;
  if (!redraw_due) return;

  const std::string line = in_place_line(current_step, values, finalize, now, seconds_per_step);
  const size_t columns = display_columns(line);
  out_ << '\r' << line;
  if (previous_line_columns_ > columns) out_ << std::string(previous_line_columns_ - columns, ' ');
  if (finalize) out_ << '\n';
  out_.flush();
  previous_line_columns_ = finalize ? 0 : columns;  // after '\n' the next line starts blank
  last_draw_time_ = now;
}

// Seconds per step, leaving out the first step (graph building, cold caches) once there are more.
double ProgressBar::estimate_seconds_per_step(int64_t current_step, double now) {
  if (current_step <= 0) return 0;
  const double seconds_per_step =
      time_after_first_step_ && current_step > 1
          ? (now - *time_after_first_step_) / static_cast<double>(current_step - 1)
          : (now - start_time_) / static_cast<double>(current_step);
  if (current_step == 1) time_after_first_step_ = now;
  return seconds_per_step;
}

// "\x1b[1m 12/938\x1b[0m \x1b[32m━━\x1b[0m\x1b[37m━━…\x1b[0m \x1b[1m1:05\x1b[0m 2ms/step - loss: 0.5012"
std::string ProgressBar::in_place_line(int64_t current_step,
                                       const std::vector<std::pair<std::string, double>>& values,
                                       bool finalize, double now, double seconds_per_step) const {
  const bool target_known = target_steps_ != kUnknownTargetSteps;
  std::string line;
  if (target_known) {
    const std::string target = std::to_string(target_steps_);
    const std::string count = pad_left(std::to_string(current_step), target.size()) + "/" + target;
    line += paint(count, kBold) + " ";
    const double fraction_done =
        static_cast<double>(current_step) / static_cast<double>(target_steps_);
    const int done_cells = std::clamp(static_cast<int>(kBarWidth * fraction_done), 0, kBarWidth);
    line += paint(repeat(kBarCell, done_cells), kGreen);
    line += paint(repeat(kBarCell, kBarWidth - done_cells), kWhite);
  } else {
    line += pad_left(std::to_string(current_step), 7) + "/Unknown";
  }

  // While running: time left. At the end (or with no target to aim at): time taken.
  const std::string time_text =
      target_known && !finalize
          ? format_eta(seconds_per_step * static_cast<double>(target_steps_ - current_step))
          : format_elapsed(now - start_time_);
  line += " " + paint(time_text, kBold);
  line += " " + format_time_per_step(seconds_per_step);
  line += format_values(values);
  return line;
}

// "938/938 - 2s - 2ms/step - accuracy: 0.8231 - loss: 0.5012"
std::string ProgressBar::epoch_summary_line(
    int64_t current_step, const std::vector<std::pair<std::string, double>>& values, double now,
    double seconds_per_step) const {
  const std::string target = std::to_string(target_steps_);
  return pad_left(std::to_string(current_step), target.size()) + "/" + target + " - " +
         format_elapsed(now - start_time_) + " - " + format_time_per_step(seconds_per_step) +
         format_values(values);
}

std::string ProgressBar::paint(const std::string& text, const char* ansi_code) const {
  if (!colors_ || text.empty()) return text;
  return ansi_code + text + kReset;
}

bool ProgressBar::stream_is_terminal(std::ostream& out) {
  constexpr int kStdoutDescriptor = 1, kStderrDescriptor = 2;
  if (&out == &std::cout) return file_descriptor_is_terminal(kStdoutDescriptor);
  if (&out == &std::cerr || &out == &std::clog) {
    return file_descriptor_is_terminal(kStderrDescriptor);
  }
  return false;  // a file or a string stream: never redraw in place
}

}  // namespace kiln
