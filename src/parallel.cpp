// The team: helper threads kiln owns, the tiles they take, and how many of them a loop may use.
//
// One loop at a time (a "job") is published to the helpers: its tiles, cut into one share per
// seat, and a generation number that says which job is current. Every claim of a tile names that
// generation, so a helper that wakes up late, after its job has ended, claims nothing: the caller
// never waits for a helper to turn up, only for tiles already claimed to finish.
#include "kiln/parallel.hpp"

#include "kiln/error.hpp"

#include <sched.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <chrono>
#include <condition_variable>
#include <iostream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define KILN_HAS_MXCSR 1
#endif

namespace kiln {
namespace {

void cpu_relax() {
#ifdef KILN_HAS_MXCSR
  _mm_pause();
#endif
}

// The floating-point mode (MXCSR on x86: rounding, flush-to-zero) travels with each job, so
// helpers compute exactly as the caller would: DenormalsFlushedToZero sets it on the caller alone.
unsigned floating_point_mode() {
#ifdef KILN_HAS_MXCSR
  return _mm_getcsr();
#else
  return 0;
#endif
}
void set_floating_point_mode([[maybe_unused]] unsigned mode) {
#ifdef KILN_HAS_MXCSR
  if (_mm_getcsr() != mode) _mm_setcsr(mode);
#endif
}

int64_t now_nanoseconds() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// The calling thread as SCHED_BATCH; true if it changed (it was SCHED_OTHER).
bool set_batch_scheduling() {
#ifdef SCHED_BATCH
  if (sched_getscheduler(0) != SCHED_OTHER) return false;
  const sched_param parameters{};
  return sched_setscheduler(0, SCHED_BATCH, &parameters) == 0;
#else
  return false;
#endif
}

std::vector<void (*)()>& helper_preparations() {
  static std::vector<void (*)()> preparations;
  return preparations;
}
std::mutex helper_preparations_mutex;

thread_local int pinned_threads = 0;  // set_num_threads on this thread; 0: follow the machine
std::atomic<int> pipeline_threads_computing{0};

class Team {
 public:
  static constexpr int kMaxSeats = 256;
  static constexpr int64_t kMaxTiles = 0xffff;  // a tile number fits a cursor's 16 bits

  static Team& instance() {
    static Team team;
    return team;
  }

  ~Team() {
    stopping_.store(true);
    generation_.fetch_add(1);
    wake_sleeping_helpers();
    helpers_.clear();  // joins them
  }

  // The caller's seat is 0. Returns false (and runs nothing) if another thread's job is running,
  // or this is a tile of one: the caller then runs the whole loop itself.
  bool run(int64_t tiles, int seats, detail::TileFunction call, const void* body) {
    if (tiles > kMaxTiles || !busy_.try_lock()) return false;
    std::lock_guard release(busy_, std::adopt_lock);
    seats = std::min<int>({seats, kMaxSeats, static_cast<int>(std::min<int64_t>(tiles, kMaxSeats))});
    if (seats <= 1) return false;
    start_helpers(seats - 1);

    // Publish the job: its fields first, then each share's cursor under the new generation (which
    // makes every claim of the old one fail), then the generation the helpers wait on.
    const uint32_t generation = generation_.load() + 1;
    call_.store(call);
    body_.store(body);
    seats_.store(seats);
    mode_.store(floating_point_mode());
    tiles_done_.store(0);
    for (int seat = 0; seat < seats; ++seat) {
      shares_[seat].cursor.store(pack(generation, share_begin(seat, tiles, seats), share_begin(seat + 1, tiles, seats)));
    }
    generation_.store(generation);
    if (sleeping_helpers_.load() > 0) wake_sleeping_helpers();

    take_tiles(generation, 0);
    // Every tile is claimed; wait for the ones other threads are still computing.
    for (int spins = 0; tiles_done_.load(std::memory_order_acquire) < tiles; ++spins) {
      if (spins < 4096) {
        cpu_relax();
      } else {
        std::this_thread::yield();  // the thread we wait for may need this core
      }
    }
    return true;
  }

 private:
  // A share's cursor, one word so that one compare-and-swap checks all of it: the job's generation
  // (32 bits), the next unclaimed tile and the share's end (16 bits each).
  struct alignas(64) Share {
    std::atomic<uint64_t> cursor{0};
  };
  static uint64_t pack(uint32_t generation, int64_t next, int64_t end) {
    return (uint64_t{generation} << 32) | (static_cast<uint64_t>(next) << 16) | static_cast<uint64_t>(end);
  }
  static int64_t share_begin(int seat, int64_t tiles, int seats) { return seat * tiles / seats; }

  // Starts helpers up to `wanted`, and returns once each new one is prepared (its buffers made).
  void start_helpers(int wanted) {
    while (static_cast<int>(helpers_.size()) < wanted) {
      const int seat = static_cast<int>(helpers_.size()) + 1;
      std::atomic<bool> prepared{false};
      helpers_.emplace_back([this, seat, &prepared] {
        {
          std::lock_guard lock(helper_preparations_mutex);
          for (void (*prepare)() : helper_preparations()) prepare();
        }
        set_batch_scheduling();
        prepared.store(true);
        prepared.notify_one();
        help(seat);
      });
      prepared.wait(false);
    }
  }

  // Claims tiles of the share of `seat` for the job `generation`: half of what is left of it when
  // `owner` is set (the seat's own thread), one otherwise. Returns the first tile claimed and sets
  // `end`, or returns -1 if the share is used up or the job is over. The owner takes half rather
  // than all: a thread whose core the scheduler hands to a pipeline thread in the middle of its
  // share (for the tens of microseconds a batch takes to copy) then holds only the tiles it has
  // claimed, and the others take the rest; and it still takes few, large ranges (a GEMM packs
  // its operand once per range).
  int64_t claim(uint32_t generation, int seat, bool owner, int64_t& end) {
    std::atomic<uint64_t>& cursor = shares_[seat].cursor;
    uint64_t seen = cursor.load();
    while (true) {
      if (seen >> 32 != generation) return -1;
      const int64_t next = static_cast<int64_t>((seen >> 16) & 0xffff), share_end = static_cast<int64_t>(seen & 0xffff);
      if (next >= share_end) return -1;
      end = owner ? next + (share_end - next + 1) / 2 : next + 1;
      if (cursor.compare_exchange_weak(seen, pack(generation, end, share_end))) return next;
    }
  }

  // Runs the seat's own share, then whatever is left of the others', starting with the next seat.
  void take_tiles(uint32_t generation, int seat) {
    const int seats = seats_.load();
    if (seat >= seats) return;
    bool mode_set = seat == 0;
    for (int offset = 0; offset < seats; ++offset) {
      const int victim = (seat + offset) % seats;
      int64_t end = 0;
      for (int64_t first; (first = claim(generation, victim, offset == 0, end)) >= 0;) {
        // A claim holds the job in place (the caller waits for it), so its fields are current.
        if (!mode_set) {
          set_floating_point_mode(mode_.load());
          mode_set = true;
        }
        call_.load()(body_.load(), first, end);
        tiles_done_.fetch_add(end - first, std::memory_order_release);
      }
    }
  }

  // A helper's life: wait for a job, take tiles, repeat.
  void help(int seat) {
    uint32_t seen = generation_.load();
    while (true) {
      seen = wait_for_job(seen);
      if (stopping_.load()) return;
      take_tiles(seen, seat);
    }
  }

  // Spins a while for the next job (a step's loops follow each other within microseconds, and a
  // sleeping thread takes tens of them to wake), but never while a pipeline thread computes: its
  // core is better given to it. Then sleeps until a job is published.
  uint32_t wait_for_job(uint32_t seen) {
    constexpr int64_t kSpinNanoseconds = 50'000;
    const int64_t spin_start = now_nanoseconds();
    for (int spins = 1;; ++spins) {
      const uint32_t generation = generation_.load();
      if (generation != seen) return generation;
      if (pipeline_threads_computing.load(std::memory_order_relaxed) > 0) break;
      if (spins % 64 == 0 && now_nanoseconds() - spin_start > kSpinNanoseconds) break;
      cpu_relax();
    }
    // A mutex and condition variable, not std::atomic::wait: libstdc++'s atomic wait lost a
    // notify_all here (a helper slept on through the team's destruction, and the process hung at
    // exit). The count goes up before the generation is read again, and run() stores the
    // generation before it reads the count, so either the helper sees the new job or run() sees
    // a sleeper and wakes it under the mutex.
    std::unique_lock lock(sleep_mutex_);
    sleeping_helpers_.fetch_add(1);
    wake_.wait(lock, [&] { return generation_.load() != seen; });
    sleeping_helpers_.fetch_sub(1);
    return generation_.load();
  }

  void wake_sleeping_helpers() {
    std::lock_guard lock(sleep_mutex_);
    wake_.notify_all();
  }

  std::mutex busy_;  // held by the caller whose job is running
  std::atomic<uint32_t> generation_{0};
  std::atomic<detail::TileFunction> call_{nullptr};
  std::atomic<const void*> body_{nullptr};
  std::atomic<int> seats_{0};
  std::atomic<unsigned> mode_{0};
  std::atomic<int64_t> tiles_done_{0};
  Share shares_[kMaxSeats];
  std::atomic<int> sleeping_helpers_{0};
  std::mutex sleep_mutex_;  // helpers sleep on wake_ under it
  std::condition_variable wake_;
  std::atomic<bool> stopping_{false};
  std::vector<std::jthread> helpers_;  // last: joined before the members they use go away
};

// ---- the cores other processes use ---------------------------------------------------------------
//
// Once a window, the caller of a loop compares the machine's busy time (/proc/stat: every core's
// user, system, interrupt and steal time, the last being time the hypervisor gave to other
// machines) with this process's own CPU time. The difference is what other processes used: when
// it reaches most of a core, the team gives that core up; when it falls again, the team takes the
// core back. A team thread sharing its core with another process would otherwise hold up the whole
// team every time the scheduler hands the core over (milliseconds, against microseconds of tiles).
class CoresUsedElsewhere {
 public:
  static constexpr int64_t kWindowNanoseconds = 200'000'000;
  static constexpr double kCoreTakenShare = 0.6;  // a core used this much by others is theirs

  // The cores left to this process, as of the last full window.
  int cores_left() const { return cores_left_.load(std::memory_order_relaxed); }

  // Called by loops' callers: cheap (one clock read) except once per window.
  void maybe_update() {
    const int64_t now = now_nanoseconds();
    int64_t window_start = window_start_ns_.load(std::memory_order_relaxed);
    if (now - window_start < kWindowNanoseconds) return;
    if (!window_start_ns_.compare_exchange_strong(window_start, now)) return;  // another caller is at it
    std::lock_guard lock(mutex_);
    const double machine_busy_s = machine_busy_seconds(), own_s = process_cpu_seconds();
    if (machine_busy_s >= 0 && last_machine_busy_s_ >= 0) {
      const double window_s = static_cast<double>(now - last_sample_ns_) * 1e-9;
      const double used_elsewhere = ((machine_busy_s - last_machine_busy_s_) - (own_s - last_own_s_)) / window_s;
      const int cores = available_cores();
      const int taken = static_cast<int>(used_elsewhere + (1.0 - kCoreTakenShare));
      cores_left_.store(std::clamp(cores - taken, 1, cores), std::memory_order_relaxed);
    }
    last_machine_busy_s_ = machine_busy_s;
    last_own_s_ = own_s;
    last_sample_ns_ = now;
  }

 private:
  static double process_cpu_seconds() {
    timespec now{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now);
    return static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) * 1e-9;
  }

  std::atomic<int64_t> window_start_ns_{0};
  std::atomic<int> cores_left_{available_cores()};
  std::mutex mutex_;  // guards the samples below
  double last_machine_busy_s_ = -1.0, last_own_s_ = 0.0;
  int64_t last_sample_ns_ = 0;
};

CoresUsedElsewhere& cores_used_elsewhere() {
  static CoresUsedElsewhere tracker;
  return tracker;
}

// A loop's seats: the pinned count; otherwise the cores other processes left, less one for each
// pipeline thread that is computing right now.
int seats_for_this_thread() {
  if (pinned_threads > 0) return pinned_threads;
  CoresUsedElsewhere& elsewhere = cores_used_elsewhere();
  elsewhere.maybe_update();
  return std::max(1, elsewhere.cores_left() - pipeline_threads_computing.load(std::memory_order_relaxed));
}

}  // namespace

double machine_busy_seconds() {
  std::FILE* file = std::fopen("/proc/stat", "r");
  if (!file) return -1.0;
  unsigned long long user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0;
  const int fields = std::fscanf(file, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &user, &nice, &system, &idle, &iowait,
                                 &irq, &softirq, &steal);
  std::fclose(file);
  if (fields < 4) return -1.0;
  static const double seconds_per_tick = 1.0 / static_cast<double>(sysconf(_SC_CLK_TCK));
  return static_cast<double>(user + nice + system + irq + softirq + steal) * seconds_per_tick;
}

int max_team_threads() { return 4 * available_cores(); }

int64_t max_pipeline_threads() { return std::max<int64_t>(64, 8 * int64_t{available_cores()}); }

int64_t capped_thread_count(int64_t asked, int64_t most, const std::string& what) {
  if (asked <= most) return asked;
  std::cerr << "Warning: " << what << " asked for " << asked << " threads; using " << most << ", the most kiln starts on "
            << available_cores() << (available_cores() == 1 ? " core" : " cores") << " (more would only take turns on them)\n";
  return most;
}

void set_num_threads(int threads) {
  if (threads < 0) throw ValueError("the thread count must be at least 1 (or 0: follow the machine), got " + std::to_string(threads));
  pinned_threads = static_cast<int>(capped_thread_count(threads, max_team_threads(), "set_num_threads"));
}

int num_threads() { return pinned_threads > 0 ? pinned_threads : available_cores(); }

int available_cores() {
  static const int cores = [] {
    cpu_set_t allowed;
    if (sched_getaffinity(0, sizeof allowed, &allowed) == 0) return std::max(1, CPU_COUNT(&allowed));
    return std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  }();
  return cores;
}

namespace detail {

void run_tiles(int64_t tiles, TileFunction call, const void* body) {
  if (tiles <= 0) return;
  const int seats = tiles > 1 ? seats_for_this_thread() : 1;
  if (seats > 1 && Team::instance().run(tiles, seats, call, body)) return;
  call(body, 0, tiles);
}

}  // namespace detail

BatchScheduling::BatchScheduling() : changed_(set_batch_scheduling()) {}

BatchScheduling::~BatchScheduling() {
  if (!changed_) return;
  const sched_param parameters{};
  sched_setscheduler(0, SCHED_OTHER, &parameters);
}

void prepare_each_helper(void (*prepare)()) {
  std::lock_guard lock(helper_preparations_mutex);
  helper_preparations().push_back(prepare);
}

PipelineComputing::PipelineComputing() { pipeline_threads_computing.fetch_add(1, std::memory_order_relaxed); }
void PipelineComputing::release() {
  if (std::exchange(counted_, false)) pipeline_threads_computing.fetch_sub(1, std::memory_order_relaxed);
}

}  // namespace kiln
