// kiln/data/batch.hpp — batch(n, drop_remainder) groups n consecutive elements into one;
// unbatch() splits each batch back into its elements (see element.hpp for what a batch is).
//
// tf.data's rules: the last batch holds what is left unless drop_remainder is true, so
// range(8).batch(3) gives [0,1,2] [3,4,5] [6,7]. Over rows of a source in memory (from_tensor_slices,
// shuffled or not) batch() takes the rows' numbers and copies the rows straight into the batch.
// Both run on their consumer's thread.
#pragma once

#include "kiln/data/element.hpp"
#include "kiln/data/node.hpp"

#include <deque>
#include <type_traits>
#include <vector>

namespace kiln::data {

template <class T>
class BatchNode : public Node<BatchOf<T>> {
 public:
  using Batch = BatchOf<T>;

  BatchNode(NodePtr<T> input, int64_t batch_size, bool drop_remainder)
      : input_(std::move(input)), batch_size_(batch_size), drop_remainder_(drop_remainder) {
    if (batch_size < 1) throw ValueError("batch: batch_size must be at least 1, got " + std::to_string(batch_size));
  }

  std::unique_ptr<Iterator<Batch>> make_iterator(IterationContext& context) const override {
    auto stats = context.stats->add_stage("batch");
    return std::make_unique<BatchIterator>(input_->make_iterator(context), batch_size_, drop_remainder_, std::move(stats));
  }

  int64_t cardinality() const override {
    const int64_t input = input_->cardinality();
    if (input < 0) return input;
    return drop_remainder_ ? input / batch_size_ : (input + batch_size_ - 1) / batch_size_;
  }

 private:
  class BatchIterator : public Iterator<Batch> {
   public:
    BatchIterator(std::unique_ptr<Iterator<T>> input, int64_t batch_size, bool drop_remainder,
                  std::shared_ptr<StageStatistics> stats)
        : input_(std::move(input)), batch_size_(batch_size), drop_remainder_(drop_remainder), stats_(std::move(stats)) {}

    std::optional<Batch> next() override {
      BusyTimer timer(*stats_);
      if constexpr (std::is_same_v<Batch, T>) {  // tensors and (x, y) pairs: maybe rows of a source
        if (const T* source = input_->row_source()) {
          rows_.clear();
          input_->next_rows(batch_size_, rows_);
          if (rows_.empty()) return std::nullopt;
          if (drop_remainder_ && static_cast<int64_t>(rows_.size()) < batch_size_) return std::nullopt;
          stats_->elements_produced++;
          return gather_rows(*source, rows_);
        }
      }
      std::vector<T> elements;
      // batch(4'000'000'000) over ten elements is legal: reserve what is likely, grow past it.
      elements.reserve(static_cast<size_t>(std::min<int64_t>(batch_size_, kReserveElements)));
      input_->next_many(batch_size_, elements);
      if (elements.empty()) return std::nullopt;
      if (drop_remainder_ && static_cast<int64_t>(elements.size()) < batch_size_) return std::nullopt;
      stats_->elements_produced++;
      return stack(std::move(elements));
    }

   private:
    static constexpr int64_t kReserveElements = 1024;
    std::unique_ptr<Iterator<T>> input_;
    int64_t batch_size_;
    bool drop_remainder_;
    std::shared_ptr<StageStatistics> stats_;
    std::vector<int64_t> rows_;  // over a row source: this batch's rows
  };

  NodePtr<T> input_;
  int64_t batch_size_;
  bool drop_remainder_;
};

template <class B>
class UnbatchNode : public Node<UnbatchedOf<B>> {
 public:
  using Element = UnbatchedOf<B>;

  explicit UnbatchNode(NodePtr<B> input) : input_(std::move(input)) {}

  std::unique_ptr<Iterator<Element>> make_iterator(IterationContext& context) const override {
    auto stats = context.stats->add_stage("unbatch");
    return std::make_unique<UnbatchIterator>(input_->make_iterator(context), std::move(stats));
  }
  int64_t cardinality() const override {
    const int64_t input = input_->cardinality();
    return input == kInfiniteCardinality || input == 0 ? input : kUnknownCardinality;
  }

 private:
  class UnbatchIterator : public Iterator<Element> {
   public:
    UnbatchIterator(std::unique_ptr<Iterator<B>> input, std::shared_ptr<StageStatistics> stats)
        : input_(std::move(input)), stats_(std::move(stats)) {}
    std::optional<Element> next() override {
      BusyTimer timer(*stats_);
      while (pending_.empty()) {
        std::optional<B> batch = input_->next();
        if (!batch) return std::nullopt;
        std::vector<Element> elements = unstack(std::move(*batch));
        pending_.assign(std::make_move_iterator(elements.begin()), std::make_move_iterator(elements.end()));
      }
      Element element = std::move(pending_.front());
      pending_.pop_front();
      stats_->elements_produced++;
      return element;
    }

   private:
    std::unique_ptr<Iterator<B>> input_;
    std::shared_ptr<StageStatistics> stats_;
    std::deque<Element> pending_;
  };

  NodePtr<B> input_;
};

}  // namespace kiln::data
