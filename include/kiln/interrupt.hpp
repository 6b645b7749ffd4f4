// kiln/interrupt.hpp — Ctrl-C during fit: the first SIGINT asks fit to stop at the end of the
// batch it is training; fit then runs the callbacks' on_train_end (a checkpoint can be written
// there) and returns the history of the epochs it finished. A second SIGINT ends the process at
// once, as Ctrl-C does by default.
//
// fit holds a StopOnInterrupt while it runs. It takes over SIGINT only where SIGINT still has its
// default action, so a program (or an embedding interpreter) with a handler of its own keeps it.
#pragma once

namespace kiln {

class StopOnInterrupt {
 public:
  StopOnInterrupt();
  ~StopOnInterrupt();
  StopOnInterrupt(const StopOnInterrupt&) = delete;
  StopOnInterrupt& operator=(const StopOnInterrupt&) = delete;

  // True once a SIGINT arrived while one was held (and until the outermost one is released).
  static bool requested();

 private:
  bool installed_ = false;
};

}  // namespace kiln
