// kiln/shared.hpp — Shared<Base>: "any Base-derived object", passed by value or by shared_ptr.
//
// It lets a user write `Sequential({layers::Dense(128), layers::Dropout(0.2)})` or
// `compile(optimizers::Adam(), ...)` with plain values, while a user who wants to keep a handle
// (to read EarlyStopping's stopped_epoch afterwards, say) passes a std::shared_ptr instead.
#pragma once

#include <concepts>
#include <memory>
#include <type_traits>

namespace kiln {

template <class Base>
class Shared {
 public:
  template <std::derived_from<Base> Derived>
  Shared(Derived value) : object_(std::make_shared<Derived>(std::move(value))) {}  // NOLINT: implicit on purpose

  template <std::derived_from<Base> Derived>
  Shared(std::shared_ptr<Derived> object) : object_(std::move(object)) {}  // NOLINT: implicit on purpose

  Base& operator*() const { return *object_; }
  Base* operator->() const { return object_.get(); }
  Base* get() const { return object_.get(); }

 private:
  std::shared_ptr<Base> object_;
};

}  // namespace kiln
