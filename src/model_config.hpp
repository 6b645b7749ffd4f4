// Keras-style configs of kiln's layers, optimizers, schedules, losses and metrics, as a .kiln
// file's config.json holds them: {"class_name": "Dense", "config": {"units": 128, ...}}, with
// Keras's class and argument names, so the file reads like Keras's own. Private to the library.
//
// Writing refuses an object kiln cannot describe (a user's own Layer subclass) with a ValueError
// naming it; reading refuses an unknown class or a missing or mistyped argument with a ValueError
// that says which, and the model file's reader adds where in config.json it was.
#pragma once

#include "kiln/layers/layer.hpp"
#include "kiln/losses.hpp"
#include "kiln/metrics.hpp"
#include "kiln/optimizers.hpp"
#include "kiln/shared.hpp"

#include <nlohmann/json.hpp>

namespace kiln::model_config {

using Json = nlohmann::ordered_json;  // keeps keys in the order written: class_name before config

Json layer_config(const Layer& layer);
Shared<Layer> layer_from_config(const Json& config);

Json optimizer_config(const Optimizer& optimizer);
Shared<Optimizer> optimizer_from_config(const Json& config);

Json loss_config(const Loss& loss);
Shared<Loss> loss_from_config(const Json& config);

Json metric_config(const Metric& metric);
Shared<Metric> metric_from_config(const Json& config);

// A float as JSON shows it: the shortest decimal that reads back as the same float (0.001, not
// the 0.0010000000474974513 of its exact double).
double json_float(float value);

}  // namespace kiln::model_config
