// CSVLogger.
#include "kiln/callbacks/csv_logger.hpp"

#include "kiln/callbacks/python_format.hpp"
#include "kiln/distributed.hpp"
#include "kiln/error.hpp"
#include "kiln/io/atomic_file.hpp"
#include "kiln/model.hpp"

#include <filesystem>
#include <fstream>
#include <iterator>

namespace kiln::callbacks {

CSVLogger::CSVLogger(std::string filename, std::string separator, bool append)
    : filename_(std::move(filename)), separator_(std::move(separator)), append_(append) {
  if (filename_.empty()) throw ValueError("CSVLogger needs a file name");
  io::check_can_write(filename_, "CSVLogger");
}

void CSVLogger::on_train_begin(const Logs&) {
  contents_.clear();
  keys_.clear();
  header_written_ = false;
  if (append_ && std::filesystem::exists(filename_)) {
    std::ifstream in(filename_, std::ios::binary);
    contents_.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    header_written_ = !contents_.empty();  // Keras writes the header only into an empty file
  }
}

void CSVLogger::on_epoch_end(int epoch, const Logs& logs) {
  if (!distributed::is_chief()) return;  // one writer in a distributed fit: rank 0
  if (keys_.empty()) {
    for (const auto& [key, value] : logs) keys_.push_back(key);  // a std::map: already sorted
  }
  if (!header_written_) {
    contents_ += "epoch";
    for (const std::string& key : keys_) contents_ += separator_ + key;
    contents_ += "\n";
    header_written_ = true;
  }
  contents_ += std::to_string(epoch);
  for (const std::string& key : keys_) {
    const auto found = logs.find(key);
    contents_ += separator_ + (found == logs.end() ? std::string("NA") : python_float(found->second));
  }
  contents_ += "\n";
  io::write_file_atomically(filename_, contents_);
}

}  // namespace kiln::callbacks
