// Tests of kiln::io::AtomicFile, through write_npz as users meet it: a save appears whole or not at
// all, planted symlinks are not followed, a full disk and SIGKILL leave the old file loadable, and
// temporaries of killed runs do not pile up.
#include "kiln/io/atomic_file.hpp"

#include "kiln/error.hpp"
#include "kiln/io/npz.hpp"

#include <doctest/doctest.h>

#include "error_message.hpp"
#include "temporary_directory.hpp"

#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

using kiln::FileError;
using kiln::Shape;
using kiln::io::AtomicFile;
using kiln::io::NamedArray;
using kiln::io::read_npz;
using kiln::io::write_npz;
using kiln::testing::contains;
using kiln::testing::error_message;
using kiln::testing::TemporaryDirectory;

std::string read_text(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>());
}

// One array of `count` floats, each `value`.
std::vector<NamedArray> filled(int64_t count, float value) {
  return {NamedArray{"w", Shape{count}, std::vector<float>(static_cast<size_t>(count), value)}};
}

// A pid that no process has: a child that has exited and been reaped.
pid_t ended_pid() {
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  ::waitpid(child, nullptr, 0);
  return child;
}

}  // namespace

TEST_CASE("atomic file: the contents appear on commit, and nothing else is left in the folder") {
  TemporaryDirectory directory;
  const std::string path = directory.file("out.txt");
  {
    AtomicFile file(path);
    file.write("hello, ");
    CHECK_FALSE(std::filesystem::exists(path));  // nothing at the path until commit
    file.write(std::string(100000, 'x'));         // larger than the buffer: written straight through
    file.commit();
  }
  CHECK(read_text(path) == "hello, " + std::string(100000, 'x'));
  CHECK(directory.listing() == std::vector<std::string>{"out.txt"});
  // The mode is what a plain open() would give, not mkstemp's private 0600.
  const mode_t mask = ::umask(0);
  ::umask(mask);
  struct stat status {};
  REQUIRE(::stat(path.c_str(), &status) == 0);
  CHECK((status.st_mode & 0777) == (0666 & ~mask));
}

TEST_CASE("atomic file: without commit the old contents stay and the temporary is removed") {
  TemporaryDirectory directory;
  const std::string path = directory.file("out.txt");
  kiln::io::write_file_atomically(path, "old");
  try {
    AtomicFile file(path);
    file.write("new, but never finished");
    throw std::runtime_error("the writer failed halfway");
  } catch (const std::runtime_error&) {
  }
  CHECK(read_text(path) == "old");
  CHECK(directory.listing() == std::vector<std::string>{"out.txt"});
}

TEST_CASE("atomic file: a missing folder or a folder at the path is refused up front, by name") {
  TemporaryDirectory directory;
  const std::string missing = directory.file("no/such/folder/model.npz");
  const std::string message = error_message<FileError>([&] { write_npz(missing, filled(3, 1.0f)); });
  CHECK(contains(message, missing));
  CHECK(contains(message, "does not exist"));
  CHECK(contains(error_message<FileError>([&] { kiln::io::check_can_write(directory.path(), "--save"); }), "is a folder"));
  CHECK_NOTHROW(kiln::io::check_can_write(directory.file("fine.npz"), "--save"));
}

TEST_CASE("atomic file: symlinks planted at the old temporary names are not followed") {
  TemporaryDirectory directory;
  const std::string victim = directory.file("victim.txt");
  kiln::io::write_file_atomically(victim, "precious");
  const std::string path = directory.file("model.npz");
  // The names an earlier kiln used (<path>.tmp-<pid>), and a guess at the new pattern.
  std::filesystem::create_symlink(victim, path + ".tmp-" + std::to_string(::getpid()));
  std::filesystem::create_symlink(victim, path + ".tmp-" + std::to_string(::getpid()) + "-XXXXXX");
  write_npz(path, filled(16, 2.0f));
  CHECK(read_text(victim) == "precious");
  CHECK(read_npz(path).front().values == filled(16, 2.0f).front().values);
}

TEST_CASE("atomic file: temporaries of processes that ended are removed by the next save") {
  TemporaryDirectory directory;
  const std::string path = directory.file("model.npz");
  const std::string stale = path + ".tmp-" + std::to_string(ended_pid()) + "-AbC123";
  const std::string alive = path + ".tmp-" + std::to_string(::getppid()) + "-XyZ789";  // a running process's
  const std::string other = directory.file("other.npz.tmp-" + std::to_string(ended_pid()) + "-QqQ000");
  for (const std::string& name : {stale, alive, other}) kiln::io::write_file_atomically(name, "partial");
  write_npz(path, filled(4, 1.0f));
  CHECK_FALSE(std::filesystem::exists(stale));
  CHECK(std::filesystem::exists(alive));  // its writer may still finish
  CHECK(std::filesystem::exists(other));  // another path's: not this save's business
}

TEST_CASE("atomic file: a full disk fails the save with the system's reason and keeps the old file") {
  TemporaryDirectory directory;
  const std::string path = directory.file("model.npz");
  write_npz(path, filled(10, 1.0f));
  const std::string old_bytes = read_text(path);
  // The child may write at most 64 KiB per file; SIGXFSZ ignored, so writes fail with EFBIG.
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    ::signal(SIGXFSZ, SIG_IGN);
    const rlimit limit{64 * 1024, 64 * 1024};
    ::setrlimit(RLIMIT_FSIZE, &limit);
    try {
      write_npz(path, filled(100000, 2.0f));  // 400 KB
    } catch (const FileError& error) {
      ::_exit(contains(error.what(), "File too large") && contains(error.what(), path) ? 0 : 2);
    } catch (...) {
      ::_exit(3);
    }
    ::_exit(1);  // the save should not have succeeded
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(read_text(path) == old_bytes);
  CHECK(directory.listing() == std::vector<std::string>{"model.npz"});
}

TEST_CASE("atomic file: a process killed while saving, 20 times, always leaves a whole file") {
  TemporaryDirectory directory;
  const std::string path = directory.file("model.npz");
  const std::vector<NamedArray> ones = filled(250000, 1.0f), twos = filled(250000, 2.0f);  // 1 MB each
  write_npz(path, ones);
  std::mt19937 random(7);
  for (int kill = 0; kill < 20; ++kill) {
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
      for (int save = 0;; ++save) write_npz(path, save % 2 == 0 ? twos : ones);
    }
    std::this_thread::sleep_for(std::chrono::microseconds(std::uniform_int_distribution<int>(0, 20000)(random)));
    ::kill(child, SIGKILL);
    ::waitpid(child, nullptr, 0);
    const std::vector<NamedArray> arrays = read_npz(path);  // throws if the file is not whole
    REQUIRE(arrays.size() == 1);
    CHECK((arrays.front().values == ones.front().values || arrays.front().values == twos.front().values));
  }
  // Whatever temporaries the kills left, the next save removes them.
  write_npz(path, ones);
  CHECK(directory.listing() == std::vector<std::string>{"model.npz"});
}
