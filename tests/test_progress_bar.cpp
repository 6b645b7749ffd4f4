// test_progress_bar.cpp — the progress bar prints exactly the lines Keras 3's Progbar prints.
//
// A fake clock makes every time exact: times are sums of powers of two, so "250ms/step" is
// 0.25 s per step with no rounding in between. Colours are off unless a test is about them,
// which leaves all 20 bar cells the same "━" whatever the progress.
#include <doctest/doctest.h>

#include <cmath>
#include <sstream>
#include <string>

#include "kiln/error.hpp"
#include "kiln/progress_bar.hpp"

using kiln::ProgressBar;

namespace {

struct FakeClock {
  double now = 0;
  ProgressBar::Clock clock() {
    return [this] { return now; };
  }
};

std::string repeat(const std::string& piece, int times) {
  std::string text;
  for (int i = 0; i < times; ++i) text += piece;
  return text;
}

const std::string kFullBar = repeat("━", 20);

// The one line a single-step InPlace bar draws when step 1 ends at `seconds`.
std::string first_in_place_line(int64_t target_steps, double seconds) {
  FakeClock fake;
  std::ostringstream out;
  ProgressBar bar(target_steps, ProgressBar::Mode::InPlace, out, fake.clock());
  bar.set_colors(false);
  fake.now = seconds;
  bar.update(1, {});
  return out.str();
}

// The EpochSummary line of a one-step epoch that took `seconds`.
std::string one_step_summary(double seconds) {
  FakeClock fake;
  std::ostringstream out;
  ProgressBar bar(1, ProgressBar::Mode::EpochSummary, out, fake.clock());
  fake.now = seconds;
  bar.update(1, {}, /*finalize=*/true);
  return out.str();
}

}  // namespace

TEST_CASE("EpochSummary prints one line when the epoch ends, like Keras's verbose=2") {
  FakeClock fake;
  std::ostringstream out;
  ProgressBar bar(938, ProgressBar::Mode::EpochSummary, out, fake.clock());

  fake.now = 0.5;
  bar.update(1, {{"accuracy", 0.5}, {"loss", 1.5}});
  fake.now = 1.0;
  bar.update(469, {{"accuracy", 0.75}, {"loss", 0.75}});
  CHECK(out.str().empty());

  fake.now = 2.0;  // 2 s / 938 steps = 2.13 ms per step
  bar.update(938,
             {{"accuracy", 0.82314}, {"loss", 0.50118}, {"val_accuracy", 0.85}, {"val_loss", 0.4}},
             /*finalize=*/true);
  CHECK(out.str() ==
        "938/938 - 2s - 2ms/step - accuracy: 0.8231 - loss: 0.5012 - val_accuracy: 0.8500 - "
        "val_loss: 0.4000\n");
}

TEST_CASE("EpochSummary pads the step count to the width of the target") {
  FakeClock fake;
  std::ostringstream out;
  ProgressBar bar(100, ProgressBar::Mode::EpochSummary, out, fake.clock());
  fake.now = 0.5;
  bar.update(7, {{"loss", 0.25}}, /*finalize=*/true);  // an epoch cut short
  CHECK(out.str() == "  7/100 - 0s - 71ms/step - loss: 0.2500\n");
}

TEST_CASE("InPlace redraws over the same line, skips redraws within 0.05 s, ends with a newline") {
  FakeClock fake;
  std::ostringstream out;
  ProgressBar bar(10, ProgressBar::Mode::InPlace, out, fake.clock());
  bar.set_colors(false);

  fake.now = 0.25;  // the first update always draws; 9 steps left at 0.25 s each
  bar.update(1, {{"loss", 0.9}});
  const std::string first = "\r 1/10 " + kFullBar + " 2s 250ms/step - loss: 0.9000";
  CHECK(out.str() == first);

  fake.now = 0.28125;  // only 0.03 s since the last draw: nothing is written
  bar.update(2, {{"loss", 0.8}});
  CHECK(out.str() == first);

  fake.now = 0.5;  // (0.5 - 0.25) / 2 steps since the first = 125 ms per step, 7 left
  bar.update(3, {{"loss", 0.7}});
  const std::string second = "\r 3/10 " + kFullBar + " 0s 125ms/step - loss: 0.7000";
  CHECK(out.str() == first + second);

  fake.now = 0.515625;  // finalize draws however soon it comes; time shown is now elapsed
  bar.update(10, {{"loss", 0.5}, {"val_loss", 0.6}}, /*finalize=*/true);
  const std::string last =
      "\r10/10 " + kFullBar + " 1s 30ms/step - loss: 0.5000 - val_loss: 0.6000\n";
  CHECK(out.str() == first + second + last);
}

TEST_CASE("InPlace with colours: bold count and time, green done cells, white remaining cells") {
  FakeClock fake;
  std::ostringstream out;
  ProgressBar bar(4, ProgressBar::Mode::InPlace, out, fake.clock());  // colours on by default

  fake.now = 0.5;
  bar.update(2, {{"loss", 0.25}});
  CHECK(out.str() == "\r\x1b[1m2/4\x1b[0m \x1b[32m" + repeat("━", 10) + "\x1b[0m\x1b[37m" +
                         repeat("━", 10) + "\x1b[0m \x1b[1m0s\x1b[0m 250ms/step - loss: 0.2500");

  out.str("");
  fake.now = 1.0;
  bar.update(4, {{"loss", 0.125}}, /*finalize=*/true);
  CHECK(out.str() == "\r\x1b[1m4/4\x1b[0m \x1b[32m" + kFullBar +
                         "\x1b[0m \x1b[1m1s\x1b[0m 250ms/step - loss: 0.1250\n");
}

TEST_CASE("InPlace pads a shorter line with spaces so nothing of the longer one remains") {
  FakeClock fake;
  std::ostringstream out;
  ProgressBar bar(100, ProgressBar::Mode::InPlace, out, fake.clock());  // colours on: not counted

  fake.now = 0.25;
  bar.update(1, {{"loss", 0.5}, {"mean_absolute_error", 0.25}});
  out.str("");
  fake.now = 0.5;
  bar.update(2, {{"loss", 0.5}});

  const std::string dropped = " - mean_absolute_error: 0.2500";
  const std::string line = out.str();
  CHECK(line.starts_with("\r"));
  CHECK(line.ends_with("loss: 0.5000" + std::string(dropped.size(), ' ')));
}

TEST_CASE("ETA while running: truncated seconds, then m:ss, then h:mm:ss") {
  // Step 1 takes 0.5 s, so the ETA is 0.5 s times the steps left.
  CHECK(first_in_place_line(3, 0.5) == "\r1/3 " + kFullBar + " 1s 500ms/step");
  CHECK(first_in_place_line(120, 0.5) == "\r  1/120 " + kFullBar + " 59s 500ms/step");  // 59.5 s
  CHECK(first_in_place_line(131, 0.5) == "\r  1/131 " + kFullBar + " 1:05 500ms/step");
  CHECK(first_in_place_line(7451, 0.5) == "\r   1/7451 " + kFullBar + " 1:02:05 500ms/step");
}

TEST_CASE("time per step is shown in s, ms or us") {
  CHECK(one_step_summary(3.0) == "1/1 - 3s - 3s/step\n");
  CHECK(one_step_summary(0.25) == "1/1 - 0s - 250ms/step\n");
  CHECK(one_step_summary(0.000125) == "1/1 - 0s - 125us/step\n");
  CHECK(one_step_summary(0.0) == "1/1 - 0s - 0s/step\n");  // Keras's "nothing timed yet"
}

TEST_CASE("values: 4 decimals, or scientific when |v| <= 1e-3, as Keras prints them") {
  CHECK(kiln::format_progress_value(0.82314) == "0.8231");
  CHECK(kiln::format_progress_value(-0.5) == "-0.5000");
  CHECK(kiln::format_progress_value(12345.678) == "12345.6780");
  CHECK(kiln::format_progress_value(0.0011) == "0.0011");
  CHECK(kiln::format_progress_value(1.23456e-4) == "1.2346e-04");
  CHECK(kiln::format_progress_value(1e-3) == "1.0000e-03");
  CHECK(kiln::format_progress_value(0.0) == "0.0000e+00");
  CHECK(kiln::format_progress_value(std::nan("")) == "nan");
}

TEST_CASE("an unknown target shows 'Unknown' until the final update fixes it") {
  FakeClock fake;
  std::ostringstream out;
  ProgressBar bar(ProgressBar::kUnknownTargetSteps, ProgressBar::Mode::InPlace, out,
                  fake.clock());
  bar.set_colors(false);

  fake.now = 0.25;
  bar.update(5, {{"loss", 0.5}});
  const std::string running = "\r      5/Unknown 0s 50ms/step - loss: 0.5000";
  CHECK(out.str() == running);

  fake.now = 1.0;
  bar.update(8, {{"loss", 0.375}}, /*finalize=*/true);
  CHECK(out.str() == running + "\r8/8 " + kFullBar + " 1s 125ms/step - loss: 0.3750\n");
}

TEST_CASE("a negative target is refused; string streams are not terminals") {
  std::ostringstream out;
  CHECK_THROWS_AS(ProgressBar(-1, ProgressBar::Mode::InPlace, out), kiln::ValueError);
  CHECK_FALSE(ProgressBar::stream_is_terminal(out));
}

TEST_CASE("the default clock is real time") {
  std::ostringstream out;
  ProgressBar bar(1, ProgressBar::Mode::EpochSummary, out);
  bar.update(1, {{"loss", 0.5}}, /*finalize=*/true);
  CHECK(out.str().starts_with("1/1 - 0s - "));
  CHECK(out.str().ends_with(" - loss: 0.5000\n"));
}
