// apps/common/training_report.hpp — the flags every training app shares: what it saves (--save,
// --history-json, --plot), the callbacks a command line can ask for (--early-stopping, --csv-log,
// --checkpoint), going on from a checkpoint (--resume), and the median epoch time it prints.
#pragma once

#include "arguments.hpp"
#include "history_json.hpp"
#include "history_plot.hpp"

#include <kiln/kiln.hpp>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

namespace kiln::apps {

// "Epoch time: median 0.16 s over 5 epochs (2 threads)"; thread_noun names what the count
// counts ("thread", or "model thread" where the pipeline has threads of its own).
inline void print_epoch_time(const History& history, const std::string& thread_noun) {
  if (history.epoch_seconds.empty()) return;
  std::vector<double> seconds = history.epoch_seconds;
  std::sort(seconds.begin(), seconds.end());
  std::printf("Epoch time: median %.2f s over %zu epochs (%d %s%s)\n", seconds[seconds.size() / 2], seconds.size(),
              num_threads(), thread_noun.c_str(), num_threads() == 1 ? "" : "s");
}

// Declares the flags write_requested_files() reads.
inline void add_output_options(Arguments& arguments) {
  arguments.add_option("save", "PATH", "",
                       "write the trained model to PATH: the whole model if PATH ends in .kiln (kiln-predict reads "
                       "it), else the weights (.npz, readable by numpy.load)");
  arguments.add_option("history-json", "PATH", "", "write per-epoch metrics, test results and epoch times as JSON");
  arguments.add_option("plot", "PATH", "", "draw the training curves (loss and accuracy, training and validation) as SVG");
}

// --early-stopping, --csv-log and --checkpoint, the callbacks a command line can ask for, and --resume.
inline void add_callback_options(Arguments& arguments) {
  arguments.add_option("early-stopping", "PATIENCE", "",
                       "stop once val_loss has not improved for PATIENCE epochs, and keep the best epoch's weights");
  arguments.add_option("csv-log", "PATH", "", "write one CSV row of metrics per epoch, as Keras's CSVLogger");
  arguments.add_option("checkpoint", "PATH", "", "write the whole training state to PATH (.kiln) after every epoch");
  arguments.add_option("resume", "PATH", "",
                       "go on from a --checkpoint file up to --epochs in all (with the first run's --seed, the "
                       "result is the one an unstopped run gives)");
}

// The callbacks those flags ask for, checked (a bad patience, an unwritable path) before training.
inline std::vector<Shared<Callback>> requested_callbacks(const Arguments& arguments) {
  std::vector<Shared<Callback>> chosen;
  if (arguments.has("early-stopping")) {
    const int patience = static_cast<int>(arguments.integer_in("early-stopping", 0, kMaxEpochs));
    chosen.push_back(callbacks::EarlyStopping({.monitor = "val_loss", .patience = patience, .verbose = 1,
                                               .restore_best_weights = true}));
  }
  if (const std::string path = arguments.text("csv-log"); !path.empty()) chosen.push_back(callbacks::CSVLogger(path));
  if (const std::string path = arguments.text("checkpoint"); !path.empty()) {
    if (!path.ends_with(".kiln")) throw ArgumentError("--checkpoint needs a path ending in .kiln, got '" + path + "'");
    chosen.push_back(callbacks::ModelCheckpoint(path));
  }
  return chosen;
}

// --resume PATH: puts the checkpoint's training state into `model` (built and compiled as the
// checkpointed one was) and returns the epoch to go on from: fit's initial_epoch. 0 without it.
inline int resume_if_requested(const Arguments& arguments, Sequential& model) {
  const std::string path = arguments.text("resume");
  if (path.empty()) return 0;
  restore_model(model, path);
  std::cout << "Resumed from " << path << " after epoch " << model.epochs_completed() << "\n";
  return model.epochs_completed();
}

// Refuses output paths that cannot be written before training starts, not after it has run for
// an hour.
inline void check_output_paths(const Arguments& arguments) {
  for (const char* flag : {"save", "history-json", "plot", "checkpoint"}) {
    if (const std::string path = arguments.text(flag); !path.empty()) io::check_can_write(path, std::string("--") + flag);
  }
}

// --save PATH writes the model (.kiln) or its weights; --history-json PATH the history with the
// final evaluation; --plot PATH the training curves.
inline void write_requested_files(const Arguments& arguments, Sequential& model, const History& history,
                                  const Logs& final_logs) {
  if (!distributed::is_chief()) return;  // a distributed job's files are rank 0's
  if (const std::string path = arguments.text("save"); path.ends_with(".kiln")) {
    model.save(path);
    std::cout << "Saved the model to " << path << "\n";
  } else if (!path.empty()) {
    model.save_weights(path);
    std::cout << "Saved weights to " << path << "\n";
  }
  if (const std::string path = arguments.text("history-json"); !path.empty()) {
    write_history_json(path, history, final_logs);
    std::cout << "Wrote history to " << path << "\n";
  }
  if (const std::string path = arguments.text("plot"); !path.empty()) {
    write_history_svg(path, history);
    std::cout << "Drew the training curves in " << path << "\n";
  }
}

}  // namespace kiln::apps
