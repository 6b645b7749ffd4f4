// Tests of the team (kiln/parallel.hpp): every tile runs once, whatever the team's size; loops
// from two threads at once, and loops inside loops, run correctly (the second alone on its
// thread); the team's size follows set_num_threads; for_each_share covers its range exactly.
#include "kiln/parallel.hpp"

#include "kiln/error.hpp"

#include <doctest/doctest.h>

#include "stream_capture.hpp"

#include <array>
#include <atomic>
#include <chrono>
#include <iostream>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

namespace {

using namespace kiln;
using kiln::testing::StreamCapture;

// Runs a loop of `tiles` tiles and returns how many times each tile ran.
std::vector<int> tile_counts(int64_t tiles) {
  std::vector<std::atomic<int>> counts(static_cast<size_t>(tiles));
  parallel_tiles(tiles, [&](int64_t first, int64_t end) {
    CHECK(first < end);
    for (int64_t tile = first; tile < end; ++tile) counts[static_cast<size_t>(tile)]++;
  });
  std::vector<int> result;
  for (const std::atomic<int>& count : counts) result.push_back(count.load());
  return result;
}

}  // namespace

TEST_CASE("parallel_tiles runs every tile exactly once, with any team size and tile count") {
  for (int threads : {1, 2, 3, 4, 7}) {
    set_num_threads(threads);
    for (int64_t tiles : {0, 1, 2, 3, 5, 16, 100, 1000}) {
      CAPTURE(threads);
      CAPTURE(tiles);
      for (int repeat = 0; repeat < 20; ++repeat) CHECK(tile_counts(tiles) == std::vector<int>(static_cast<size_t>(tiles), 1));
    }
  }
  set_num_threads(2);
}

TEST_CASE("parallel_tiles shares the tiles out to more than one thread when the team has several") {
  set_num_threads(2);
  std::mutex mutex;
  std::set<std::thread::id> threads_seen;
  std::atomic<size_t> threads_counted{0};
  // Each tile waits (up to 10 s) until a second thread has taken one: a helper that wakes late on
  // a loaded machine then still finds tiles left to take.
  parallel_tiles(40, [&](int64_t, int64_t) {
    {
      std::lock_guard lock(mutex);
      threads_seen.insert(std::this_thread::get_id());
      threads_counted = threads_seen.size();
    }
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    // Sleeps rather than yields: on a loaded machine a yield may hand the core straight back to this
    // thread, where a sleep leaves it to the woken helper.
    while (threads_counted.load() < 2 && std::chrono::steady_clock::now() < give_up) {
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
  });
  CHECK(threads_seen.size() == 2);
}

TEST_CASE("a thread held up in its share leaves the rest of that share to the others") {
  set_num_threads(2);
  // 8 tiles, 4 to a seat. Whichever thread takes tile 0 stops there (as if the scheduler had given
  // its core to a pipeline thread) until tiles 2 and 3 of the same share are done: the other
  // thread must be able to take them. A thread that claimed its whole share at once would keep
  // them, and the wait would give up after 10 s.
  std::array<std::atomic<bool>, 8> done{};
  std::atomic<bool> waited_in_vain{false};
  parallel_tiles(8, [&](int64_t first, int64_t end) {
    for (int64_t tile = first; tile < end; ++tile) {
      if (tile == 0) {
        const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (!(done[2].load() && done[3].load()) && std::chrono::steady_clock::now() < give_up) {
          std::this_thread::sleep_for(std::chrono::microseconds(100));
        }
        waited_in_vain = !(done[2].load() && done[3].load());
      }
      done[static_cast<size_t>(tile)] = true;
    }
  });
  CHECK_FALSE(waited_in_vain.load());
  for (const std::atomic<bool>& tile_done : done) CHECK(tile_done.load());
  set_num_threads(0);
}

TEST_CASE("loops started from two threads at once, and loops inside loops, each run every tile once") {
  set_num_threads(2);
  std::atomic<int64_t> inner_tiles{0};
  auto run_loops = [&] {
    set_num_threads(2);
    for (int repeat = 0; repeat < 200; ++repeat) {
      CHECK(tile_counts(17) == std::vector<int>(17, 1));
      parallel_tiles(4, [&](int64_t first, int64_t end) {
        for (int64_t tile = first; tile < end; ++tile) {
          parallel_tiles(3, [&](int64_t inner_first, int64_t inner_end) { inner_tiles += inner_end - inner_first; });
        }
      });
    }
  };
  std::thread other(run_loops);
  run_loops();
  other.join();
  CHECK(inner_tiles == 2 * 200 * 4 * 3);
}

TEST_CASE("for_each_share covers [0, count) in whole, disjoint shares") {
  set_num_threads(3);
  for (int64_t count : {int64_t{0}, int64_t{1}, int64_t{15}, int64_t{16}, int64_t{17}, int64_t{1000}}) {
    for (bool split : {false, true}) {
      std::vector<std::atomic<int>> covered(static_cast<size_t>(count));
      for_each_share(count, split, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) covered[static_cast<size_t>(i)]++;
      });
      for (const std::atomic<int>& times : covered) CHECK(times.load() == 1);
    }
  }
  set_num_threads(2);
}

TEST_CASE("set_num_threads pins the team for the calling thread only, 0 unpins it, and it refuses nonsense") {
  set_num_threads(3);
  CHECK(num_threads() == 3);
  int other_threads = 0;
  std::thread([&] { other_threads = num_threads(); }).join();
  CHECK(other_threads == available_cores());
  CHECK_THROWS_AS(set_num_threads(-1), ValueError);
  set_num_threads(0);  // follow the machine again
  CHECK(num_threads() == available_cores());
  CHECK(available_cores() >= 1);
  set_num_threads(2);
}

TEST_CASE("thread counts beyond what a machine can use are capped, with a warning that says so") {
  StreamCapture capture(std::cerr);
  set_num_threads(100000);
  CHECK(num_threads() == max_team_threads());
  CHECK(max_team_threads() == 4 * available_cores());
  CHECK(capture.text().find("set_num_threads asked for 100000 threads; using " + std::to_string(max_team_threads())) !=
        std::string::npos);
  std::atomic<int64_t> tiles_run{0};
  parallel_tiles(64, [&](int64_t first, int64_t end) { tiles_run += end - first; });  // the capped team runs
  CHECK(tiles_run == 64);
  set_num_threads(2);
  CHECK(capped_thread_count(5, 8, "x") == 5);
  CHECK(capped_thread_count(9, 8, "x") == 8);
  CHECK(max_pipeline_threads() >= 64);
}
