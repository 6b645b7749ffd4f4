// kiln/callbacks/csv_logger.hpp — CSVLogger: one row per epoch, as Keras writes it: a header
// "epoch,<logs' names, sorted>", then the epoch (from 0) and each value as Python prints a float.
// With append, rows go after an existing file's (and no second header). The file is rewritten
// whole through an AtomicFile after every epoch, so a killed run leaves every finished epoch's row.
#pragma once

#include "kiln/callbacks.hpp"

#include <string>
#include <vector>

namespace kiln::callbacks {

class CSVLogger : public Callback {
 public:
  explicit CSVLogger(std::string filename, std::string separator = ",", bool append = false);
  void on_train_begin(const Logs& logs) override;
  void on_epoch_end(int epoch, const Logs& logs) override;

 private:
  std::string filename_, separator_;
  bool append_;
  std::string contents_;            // the whole file as it should be now
  std::vector<std::string> keys_;   // the columns, fixed by the first epoch's logs
  bool header_written_ = false;
};

}  // namespace kiln::callbacks
