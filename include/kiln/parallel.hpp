// kiln/parallel.hpp — the team: the threads that run the model's math, and how a loop is shared
// between them.
//
// The team is the thread that calls into the model (fit, predict...) plus helper threads that kiln
// owns. A parallel loop is cut into tiles, and how many depends on the work, never on the team's
// size. Each thread first takes its own share of the tiles, then what is left of the others'
// shares, and the loop is over when every tile is done, not when every thread has turned up:
//  - results do not depend on the team's size: a tile is computed the same way by any thread;
//  - a helper that lost its core (to a pipeline thread, or another process) holds up only the
//    tiles it has already claimed;
//  - idle helpers spin only briefly, and not at all while a pipeline thread is computing.
// The team's size follows the machine unless set_num_threads pins it: see docs/architecture.md.
// Pipeline threads run their own loops alone (their team is one thread).
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>

namespace kiln {

// Pins the team to `threads` threads for loops started by the calling thread (other threads keep
// their own setting); at most max_team_threads(), with a warning above it. Without it, or after set_num_threads(0), the team uses every core this
// process may run on, fewer while other processes or kiln's pipeline threads are using some.
void set_num_threads(int threads);
// The most threads the calling thread's loops use: the pinned count, or the cores it may use.
int num_threads();
// The cores this process may run on (its CPU affinity).
int available_cores();
// Seconds every core of the machine has been busy since boot (/proc/stat: user, system, interrupt
// and steal time), or -1 where that cannot be read. Less this process's CPU time over the same
// span, it is what other processes used.
double machine_busy_seconds();

// The most threads kiln starts for one purpose. More team threads than cores only take turns on
// them (1000 ran 140 times slower than 2), and tens of thousands exhaust the system's threads.
// A pipeline stage may want more threads than cores when its work waits (a network disk), so it
// gets more room. Asking for more gets the most, and a warning on stderr saying so.
int max_team_threads();          // 4 per core
int64_t max_pipeline_threads();  // 8 per core, and at least 64
// `asked`, or `most` with a warning naming `what` ("map: num_parallel_calls") when asked is more.
int64_t capped_thread_count(int64_t asked, int64_t most, const std::string& what);

// Below this many elements an element-wise loop runs on one thread.
inline constexpr int64_t kParallelMinElements = 1 << 15;

// ---- tiles ----------------------------------------------------------------------------------------

namespace detail {
using TileFunction = void (*)(const void* body, int64_t first_tile, int64_t end_tile);
void run_tiles(int64_t tiles, TileFunction call, const void* body);
}  // namespace detail

// Calls body(first_tile, end_tile) over ranges that together cover [0, tiles) once each, on the
// calling thread and the team's helpers. A thread's own share comes in a few ranges (half of what
// is left each time); tiles taken from another's share come one at a time. The body must not throw.
template <class Body>
void parallel_tiles(int64_t tiles, const Body& body) {
  detail::run_tiles(
      tiles, [](const void* b, int64_t first, int64_t end) { (*static_cast<const Body*>(b))(first, end); }, &body);
}

// Runs body(begin, end) over [0, count): when `split` is true, over shares taken by the team's
// threads (an element-wise loop's result does not depend on how it is cut); otherwise once,
// body(0, count), on the calling thread.
//
// Each call runs on a copy of the body that nothing else can see: the compiler then keeps what it
// captured in registers, where stores through its pointers could otherwise (as far as it knows)
// change the body itself, and GCC would not vectorise the loop.
template <class Body>
void for_each_share(int64_t count, bool split, const Body& body) {
  constexpr int64_t kTiles = 16;  // enough for a late helper's share to be taken by the others
  const int64_t tiles = split ? std::min(count, kTiles) : 1;
  if (tiles <= 1) {
    const Body own_body = body;
    own_body(int64_t{0}, count);
    return;
  }
  parallel_tiles(tiles, [&](int64_t first, int64_t end) {
    const Body own_body = body;
    own_body(first * count / tiles, end * count / tiles);
  });
}

// Runs `prepare` on each helper thread as it starts (and on none started before this call): for
// per-thread buffers that must exist before a helper's first tile, so that no training step, the
// first a helper joins included, allocates. Meant for static registration by kiln's own modules.
void prepare_each_helper(void (*prepare)());

// While alive, the calling thread is scheduled as a batch thread (Linux's SCHED_BATCH), as the
// team's helpers always are: the same share of the CPU as any other thread, but waking up never
// preempts the thread that woke it. Without it, a consumer woken by its producer's new element
// takes the producer's core at once, and the producer gets it back only after the step (some
// 300 us later), instead of going straight on to its next element. fit, evaluate and predict
// hold one; a thread of another real-time policy is left as it is.
class BatchScheduling {
 public:
  BatchScheduling();
  ~BatchScheduling();
  BatchScheduling(const BatchScheduling&) = delete;
  BatchScheduling& operator=(const BatchScheduling&) = delete;

 private:
  bool changed_ = false;
};

// ---- pipeline threads -------------------------------------------------------------------------------

// Held by a pipeline thread while it computes an element (not while it waits for a disk or a
// queue): the team then leaves it a core, and idle helpers sleep rather than spin. The thread that
// wakes a computing pipeline thread with work (a consumer freeing a buffer slot) may make one and
// hand it over: the core is then free before the woken thread is even scheduled, so the kernel
// finds it idle instead of queueing the thread behind a team thread.
class PipelineComputing {
 public:
  PipelineComputing();
  ~PipelineComputing() { release(); }
  PipelineComputing(PipelineComputing&& other) noexcept : counted_(std::exchange(other.counted_, false)) {}
  PipelineComputing& operator=(PipelineComputing&& other) noexcept {
    if (this != &other) {
      release();
      counted_ = std::exchange(other.counted_, false);
    }
    return *this;
  }
  PipelineComputing(const PipelineComputing&) = delete;
  PipelineComputing& operator=(const PipelineComputing&) = delete;

 private:
  void release();
  bool counted_ = true;
};

}  // namespace kiln
