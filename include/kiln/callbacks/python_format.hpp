// kiln/callbacks/python_format.hpp — the two bits of Python's text formatting that Keras's
// callbacks show users: a float as repr() prints it (CSV files, messages), and a file path
// template as str.format fills it (ModelCheckpoint's "weights.{epoch:02d}-{val_loss:.2f}.npz").
#pragma once

#include "kiln/logs.hpp"

#include <string>

namespace kiln::callbacks {

// Python's repr() of a float: the shortest digits that read back, "0.0001", "1e-05", "2.0".
std::string python_float(double value);

// Fills "{name}" and "{name:spec}" fields from `values`, spec being Python's
// [0][width][.precision][d|f|e|g] ("{epoch:02d}", "{val_loss:.4f}"); "{{" and "}}" are braces.
// A name not in `values` or a spec outside that subset is a ValueError naming the template.
std::string format_path(const std::string& pattern, const Logs& values);

}  // namespace kiln::callbacks
