// AtomicFile: mkstemp beside the target, write, fsync, rename, fsync the folder.
#include "kiln/io/atomic_file.hpp"

#include "kiln/error.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>

namespace kiln::io {
namespace {

constexpr size_t kBufferSize = 1 << 16;
constexpr std::string_view kTemporaryMarker = ".tmp-";

std::string folder_of(const std::string& path) {
  const std::string folder = std::filesystem::path(path).parent_path().string();
  return folder.empty() ? "." : folder;
}

std::string file_name_of(const std::string& path) { return std::filesystem::path(path).filename().string(); }

// Removes "<name>.tmp-<pid>-XXXXXX" files in `folder` whose process has ended: the leftovers of
// runs killed while saving to the same path. A pid that was reused since only delays the cleanup.
void remove_stale_temporaries(const std::string& folder, const std::string& name) {
  const std::string prefix = name + std::string(kTemporaryMarker);
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(folder, error)) {
    const std::string candidate = entry.path().filename().string();
    if (!candidate.starts_with(prefix)) continue;
    const std::string_view rest = std::string_view(candidate).substr(prefix.size());
    long pid = 0;
    const auto [end, parse_error] = std::from_chars(rest.data(), rest.data() + rest.size(), pid);
    if (parse_error != std::errc{} || end == rest.data() || *end != '-' || pid <= 0) continue;
    if (pid == ::getpid() || ::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH) continue;
    std::filesystem::remove(entry.path(), error);
  }
}

bool is_directory(const std::string& path) {
  struct stat status {};
  return ::stat(path.c_str(), &status) == 0 && S_ISDIR(status.st_mode);
}

}  // namespace

void check_can_write(const std::string& path, const std::string& what) {
  const std::string folder = folder_of(path);
  if (!is_directory(folder)) {
    throw FileError(what + " '" + path + "': the folder '" + folder + "' does not exist");
  }
  if (::access(folder.c_str(), W_OK | X_OK) != 0) {
    throw FileError(what + " '" + path + "': the folder '" + folder + "' cannot be written (" + std::strerror(errno) + ")");
  }
  if (is_directory(path)) throw FileError(what + " '" + path + "' is a folder, not a file name");
}

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)) {
  check_can_write(path_, "cannot write");
  remove_stale_temporaries(folder_of(path_), file_name_of(path_));
  std::string pattern = path_ + std::string(kTemporaryMarker) + std::to_string(::getpid()) + "-XXXXXX";
  descriptor_ = ::mkostemp(pattern.data(), O_CLOEXEC);  // O_CREAT | O_EXCL, mode 0600
  if (descriptor_ < 0) fail("cannot create a temporary file beside it", errno);
  temporary_path_ = std::move(pattern);
  // mkstemp's 0600 would make a saved model private to its writer; give it what open() would.
  const mode_t mask = ::umask(0);
  ::umask(mask);
  ::fchmod(descriptor_, 0666 & ~mask);
  buffer_.reserve(kBufferSize);
}

AtomicFile::~AtomicFile() {
  if (descriptor_ >= 0) ::close(descriptor_);
  if (!committed_ && !temporary_path_.empty()) ::unlink(temporary_path_.c_str());
}

void AtomicFile::fail(const std::string& what, int error_number) const {
  throw FileError("cannot write '" + path_ + "': " + what + " (" + std::strerror(error_number) + ")");
}

void AtomicFile::write(const void* data, size_t size) {
  const char* bytes = static_cast<const char*>(data);
  if (buffer_.size() + size > kBufferSize) flush_buffer();
  if (size < kBufferSize) {
    buffer_.insert(buffer_.end(), bytes, bytes + size);
  } else {
    write_through(bytes, size);  // large writes skip the buffer
  }
}

void AtomicFile::flush_buffer() {
  write_through(buffer_.data(), buffer_.size());
  buffer_.clear();
}

void AtomicFile::write_through(const char* bytes, size_t size) {
  while (size > 0) {
    const ssize_t written = ::write(descriptor_, bytes, size);
    if (written < 0 && errno == EINTR) continue;
    if (written < 0) fail("writing failed", errno);
    bytes += written;
    size -= static_cast<size_t>(written);
  }
}

void AtomicFile::commit() {
  if (committed_) return;
  flush_buffer();
  if (::fsync(descriptor_) != 0) fail("flushing it to the disk failed", errno);
  const int closed = ::close(descriptor_);
  descriptor_ = -1;
  if (closed != 0) fail("closing it failed", errno);
  if (::rename(temporary_path_.c_str(), path_.c_str()) != 0) fail("renaming '" + temporary_path_ + "' over it failed", errno);
  committed_ = true;
  // The rename is an entry in the folder: until the folder is flushed, a power cut may undo it.
  const int folder = ::open(folder_of(path_).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (folder >= 0) {
    ::fsync(folder);  // some file systems refuse fsync on a folder; the file itself is safe
    ::close(folder);
  }
}

void write_file_atomically(const std::string& path, std::string_view contents) {
  AtomicFile file(path);
  file.write(contents);
  file.commit();
}

}  // namespace kiln::io
