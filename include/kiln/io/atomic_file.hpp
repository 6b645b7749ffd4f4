// kiln/io/atomic_file.hpp — a file that appears whole or not at all.
//
// Every file kiln writes (weights, caches, histories, images) goes through here:
//  1. the bytes go to a temporary file beside the target, "<path>.tmp-<pid>-XXXXXX", made by
//     mkstemp: its name cannot be guessed, and it is created with O_EXCL, so a file or symlink
//     planted in a shared folder is never opened or followed;
//  2. commit() flushes it to the disk (fsync), renames it over `path`, then fsyncs the folder so
//     the rename itself survives a power cut;
//  3. anything short of commit() (an error, an exception, a full disk) removes the temporary, and
//     `path` keeps what it held before.
// A process killed mid-write cannot remove its temporary; the next AtomicFile for the same path
// removes the temporaries of processes that no longer exist (the pid in the name says whose).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::io {

class AtomicFile {
 public:
  // Creates the temporary. Throws FileError naming `path` if its folder does not exist or
  // cannot be written.
  explicit AtomicFile(std::string path);
  ~AtomicFile();  // without commit(): removes the temporary
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  // Appends bytes; throws FileError (with the system's reason: "File too large", "No space
  // left on device"...) if the disk refuses them.
  void write(const void* data, size_t size);
  void write(std::string_view text) { write(text.data(), text.size()); }

  // Makes the written bytes the contents of `path`, durably. Throws FileError on failure, in
  // which case `path` is as it was.
  void commit();

  const std::string& path() const { return path_; }
  const std::string& temporary_path() const { return temporary_path_; }

 private:
  void flush_buffer();
  void write_through(const char* bytes, size_t size);  // all of it, or a FileError
  [[noreturn]] void fail(const std::string& what, int error_number) const;

  std::string path_, temporary_path_;
  int descriptor_ = -1;
  std::vector<char> buffer_;  // small writes (a cache's elements) gathered into large ones
  bool committed_ = false;
};

// `contents` as the whole of `path`, through an AtomicFile.
void write_file_atomically(const std::string& path, std::string_view contents);

// The folder that will hold `path` exists and may be written: for checking an output path before
// a long run rather than failing at its end. Throws FileError naming `path` and `what` ("--save").
void check_can_write(const std::string& path, const std::string& what);

}  // namespace kiln::io
