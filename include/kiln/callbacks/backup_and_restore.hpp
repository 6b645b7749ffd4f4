// kiln/callbacks/backup_and_restore.hpp — BackupAndRestore: a fit that was killed picks up where
// it stopped when the same program runs again.
//
// After every epoch the whole training state goes to <backup_dir>/latest.kiln (model.save:
// weights, optimizer state, random states, epochs done). At the start of fit, if that file exists,
// it is restored into the model (model_file.hpp's restore_model) and fit begins at the epoch after
// the last one saved; when fit ends normally the backup is deleted (delete_checkpoint), as in
// Keras. A fit stopped by Ctrl-C keeps it. With the same seed and data, the resumed run ends with
// the weights an uninterrupted run would have had, bit for bit.
#pragma once

#include "kiln/callbacks.hpp"

#include <string>

namespace kiln::callbacks {

class BackupAndRestore : public Callback {
 public:
  // Creates backup_dir if it does not exist; a FileError if it cannot be written.
  explicit BackupAndRestore(std::string backup_dir, bool delete_checkpoint = true);
  void on_train_begin(const Logs& logs) override;
  void on_epoch_end(int epoch, const Logs& logs) override;
  void on_train_end(const Logs& logs) override;

  const std::string& backup_path() const { return backup_path_; }

 private:
  std::string backup_path_;
  bool delete_checkpoint_;
};

}  // namespace kiln::callbacks
