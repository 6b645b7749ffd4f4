// BackupAndRestore: save the training state every epoch, restore it at the start of fit.
#include "kiln/callbacks/backup_and_restore.hpp"

#include "kiln/distributed.hpp"

#include "kiln/error.hpp"
#include "kiln/interrupt.hpp"
#include "kiln/io/atomic_file.hpp"
#include "kiln/model_file.hpp"

#include <filesystem>
#include <iostream>

namespace kiln::callbacks {

BackupAndRestore::BackupAndRestore(std::string backup_dir, bool delete_checkpoint)
    : backup_path_((std::filesystem::path(backup_dir) / "latest.kiln").string()), delete_checkpoint_(delete_checkpoint) {
  if (backup_dir.empty()) throw ValueError("BackupAndRestore: backup_dir is empty");
  std::error_code error;
  std::filesystem::create_directories(backup_dir, error);
  if (error) throw FileError("BackupAndRestore: cannot create backup_dir '" + backup_dir + "': " + error.message());
  io::check_can_write(backup_path_, "BackupAndRestore");
}

void BackupAndRestore::on_train_begin(const Logs&) {
  if (!std::filesystem::exists(backup_path_)) return;
  restore_model(model(), backup_path_);
  model().initial_epoch_override = model().epochs_completed();
  if (distributed::is_chief()) std::cout << "Restored the training state from " << backup_path_ << ": going on from epoch "
            << model().epochs_completed() + 1 << "\n";
}

// In a distributed fit every rank restores from the backup, and rank 0 alone writes it.
void BackupAndRestore::on_epoch_end(int, const Logs&) {
  if (distributed::is_chief()) model().save(backup_path_);
}

void BackupAndRestore::on_train_end(const Logs&) {
  // An interrupted run keeps its backup: the next run goes on from it.
  if (delete_checkpoint_ && !StopOnInterrupt::requested() && distributed::is_chief()) std::filesystem::remove(backup_path_);
}

}  // namespace kiln::callbacks
