// tests/stream_capture.hpp — redirects a stream (std::cout, std::cerr) into a string while it
// lives, for tests about what kiln prints.
#pragma once

#include <ostream>
#include <sstream>
#include <string>

namespace kiln::testing {

class StreamCapture {
 public:
  explicit StreamCapture(std::ostream& stream) : stream_(stream), saved_(stream.rdbuf(captured_.rdbuf())) {}
  ~StreamCapture() { stream_.rdbuf(saved_); }
  StreamCapture(const StreamCapture&) = delete;
  StreamCapture& operator=(const StreamCapture&) = delete;
  std::string text() const { return captured_.str(); }

 private:
  std::ostream& stream_;
  std::ostringstream captured_;
  std::streambuf* saved_;
};

}  // namespace kiln::testing
