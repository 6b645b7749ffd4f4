// StopOnInterrupt: a SIGINT handler that only raises a flag, and gives the second SIGINT back to
// the default action.
#include "kiln/interrupt.hpp"

#include <atomic>
#include <csignal>

#include <signal.h>

namespace kiln {
namespace {

std::atomic<int> interrupts{0};  // lock-free on every target: safe to touch in a signal handler
std::atomic<int> holders{0};
struct sigaction previous_action {};

void on_interrupt(int) {
  if (interrupts.fetch_add(1) == 0) return;
  // The second Ctrl-C: the user means it. Back to the default action, and take it.
  signal(SIGINT, SIG_DFL);
  raise(SIGINT);
}

}  // namespace

StopOnInterrupt::StopOnInterrupt() {
  if (holders.fetch_add(1) > 0) return;  // a fit inside a fit: the outer one handles it
  interrupts = 0;
  struct sigaction current {};
  if (sigaction(SIGINT, nullptr, &current) != 0 || current.sa_handler != SIG_DFL) return;
  struct sigaction action {};
  action.sa_handler = on_interrupt;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;  // reads and waits in the pipeline go on; fit checks the flag
  installed_ = sigaction(SIGINT, &action, &previous_action) == 0;
}

StopOnInterrupt::~StopOnInterrupt() {
  if (installed_) sigaction(SIGINT, &previous_action, nullptr);
  if (holders.fetch_sub(1) == 1) interrupts = 0;
}

bool StopOnInterrupt::requested() { return interrupts.load(std::memory_order_relaxed) > 0; }

}  // namespace kiln
