// kiln/kiln.hpp — everything kiln offers, in one include.
#pragma once

#include "kiln/activations.hpp"
#include "kiln/callbacks.hpp"
#include "kiln/callbacks/backup_and_restore.hpp"
#include "kiln/callbacks/csv_logger.hpp"
#include "kiln/callbacks/lambda_callback.hpp"
#include "kiln/callbacks/learning_rate.hpp"
#include "kiln/callbacks/model_checkpoint.hpp"
#include "kiln/callbacks/monitor.hpp"
#include "kiln/callbacks/python_format.hpp"
#include "kiln/data/dataset.hpp"
#include "kiln/data/sequence.hpp"
#include "kiln/denormals.hpp"
#include "kiln/datasets/idx.hpp"
#include "kiln/error.hpp"
#include "kiln/gemm.hpp"
#include "kiln/image/directory.hpp"
#include "kiln/image/ops.hpp"
#include "kiln/interrupt.hpp"
#include "kiln/io/atomic_file.hpp"
#include "kiln/io/npz.hpp"
#include "kiln/io/zip.hpp"
#include "kiln/layers/activation_layer.hpp"
#include "kiln/layers/dense.hpp"
#include "kiln/layers/dropout.hpp"
#include "kiln/layers/flatten.hpp"
#include "kiln/layers/layer.hpp"
#include "kiln/layers/rescaling.hpp"
#include "kiln/logs.hpp"
#include "kiln/losses.hpp"
#include "kiln/metrics.hpp"
#include "kiln/model.hpp"
#include "kiln/model_file.hpp"
#include "kiln/optimizers.hpp"
#include "kiln/parallel.hpp"
#include "kiln/progress_bar.hpp"
#include "kiln/random.hpp"
#include "kiln/schedules.hpp"
#include "kiln/tensor.hpp"

namespace kiln {
// The names a Keras user reaches for first, without the data:: prefix.
using data::AUTOTUNE;
using data::Dataset;
}  // namespace kiln
