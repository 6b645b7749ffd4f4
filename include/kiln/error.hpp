// kiln/error.hpp — the exceptions kiln throws.
//
// Every error is a sentence a stranger can act on: it names the file, layer or shape at fault.
// Catch kiln::Error to handle all of them; the subclasses let a program tell them apart.
#pragma once

#include <exception>
#include <stdexcept>
#include <string>

namespace kiln {

// Base of every exception kiln throws on purpose.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Tensors, layers or data whose shapes do not fit together.
class ShapeError : public Error {
 public:
  using Error::Error;
};

// A file that cannot be read or written, or whose contents are not what its format promises.
class FileError : public Error {
 public:
  using Error::Error;
};

// An argument or a value outside what the operation accepts (a label out of range, a NaN loss,
// fit before compile...).
class ValueError : public Error {
 public:
  using Error::Error;
};

// Memory (or threads) the machine cannot give: a tensor, batch or image too large to hold. The
// message names what was being made and its size.
class ResourceError : public Error {
 public:
  using Error::Error;
};

// The message of a caught exception (std::current_exception()), whatever its type.
inline std::string message_of(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& caught) {
    return caught.what();
  } catch (...) {
    return "an exception that is not a std::exception";
  }
}

}  // namespace kiln
