// kiln/callbacks/lambda_callback.hpp — LambdaCallback: a callback made of plain functions, any of
// which may be left empty, as Keras's LambdaCallback(on_epoch_end=..., ...).
//   callbacks::LambdaCallback({.on_epoch_end = [](int epoch, const Logs& logs) { ... }})
#pragma once

#include "kiln/callbacks.hpp"

#include <functional>

namespace kiln::callbacks {

struct LambdaCallbackFunctions {
  std::function<void(int epoch, const Logs& logs)> on_epoch_begin, on_epoch_end;
  std::function<void(int64_t batch, const Logs& logs)> on_train_batch_begin, on_train_batch_end;
  std::function<void(const Logs& logs)> on_train_begin, on_train_end;
};

class LambdaCallback : public Callback {
 public:
  explicit LambdaCallback(LambdaCallbackFunctions functions) : functions_(std::move(functions)) {}
  void on_epoch_begin(int epoch, const Logs& logs) override { call(functions_.on_epoch_begin, epoch, logs); }
  void on_epoch_end(int epoch, const Logs& logs) override { call(functions_.on_epoch_end, epoch, logs); }
  void on_train_batch_begin(int64_t batch, const Logs& logs) override { call(functions_.on_train_batch_begin, batch, logs); }
  void on_train_batch_end(int64_t batch, const Logs& logs) override { call(functions_.on_train_batch_end, batch, logs); }
  void on_train_begin(const Logs& logs) override { call(functions_.on_train_begin, logs); }
  void on_train_end(const Logs& logs) override { call(functions_.on_train_end, logs); }

 private:
  template <class Function, class... Arguments>
  static void call(const Function& function, const Arguments&... arguments) {
    if (function) function(arguments...);
  }
  LambdaCallbackFunctions functions_;
};

}  // namespace kiln::callbacks
