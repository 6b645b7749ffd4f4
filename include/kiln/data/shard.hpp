// kiln/data/shard.hpp — shard(num_shards, index) keeps every num_shards-th element, starting at
// element `index`: element i is kept when i % num_shards == index, as in tf.data. Each of
// num_shards processes reading the same dataset then gets a share of it no other gets; put the
// shard before expensive work (reading files, decoding), so each process does only its own.
// Runs on its consumer's thread.
#pragma once

#include "kiln/data/element.hpp"
#include "kiln/data/node.hpp"
#include "kiln/error.hpp"

#include <string>
#include <vector>

namespace kiln::data {

template <class T>
class ShardNode : public Node<T> {
 public:
  ShardNode(NodePtr<T> input, int64_t num_shards, int64_t index)
      : input_(std::move(input)), num_shards_(num_shards), index_(index) {
    if (num_shards < 1) throw ValueError("shard: num_shards must be at least 1, got " + std::to_string(num_shards));
    if (index < 0 || index >= num_shards) {
      throw ValueError("shard: index must be in [0, " + std::to_string(num_shards) + "), got " + std::to_string(index));
    }
  }

  std::unique_ptr<Iterator<T>> make_iterator(IterationContext& context) const override {
    auto stats = context.stats->add_stage("shard");
    return std::make_unique<ShardIterator>(input_->make_iterator(context), num_shards_, index_, std::move(stats));
  }
  // Of n elements, shard `index` keeps n / num_shards, and one more when index < n % num_shards.
  int64_t cardinality() const override {
    const int64_t input = input_->cardinality();
    if (input < 0) return input;  // infinite or unknown stays so
    return input / num_shards_ + (index_ < input % num_shards_ ? 1 : 0);
  }

 private:
  class ShardIterator : public Iterator<T> {
   public:
    ShardIterator(std::unique_ptr<Iterator<T>> input, int64_t num_shards, int64_t index,
                  std::shared_ptr<StageStatistics> stats)
        : input_(std::move(input)), num_shards_(num_shards), to_skip_(index), stats_(std::move(stats)) {}
    std::optional<T> next() override {
      if (ended_) return std::nullopt;
      for (; to_skip_ > 0; --to_skip_) {
        if (!input_->next()) return end();
      }
      std::optional<T> element = input_->next();
      if (!element) return end();
      to_skip_ = num_shards_ - 1;  // the other shards' elements before this shard's next one
      stats_->elements_produced++;
      return element;
    }

    // Over a stage that hands out row numbers (node.hpp), the shard hands out its share of them,
    // so batch() still copies rows straight from the source.
    const T* row_source() const override { return input_->row_source(); }
    int64_t next_rows(int64_t count, std::vector<int64_t>& rows) override {
      int64_t added = 0;
      for (; added < count && !ended_; ++added) {
        skipped_.clear();
        const int64_t wanted = to_skip_ + 1;  // the other shards' rows, then this shard's
        if (input_->next_rows(wanted, skipped_) < wanted) {
          ended_ = true;
          break;
        }
        rows.push_back(skipped_.back());
        to_skip_ = num_shards_ - 1;
        stats_->elements_produced++;
      }
      return added;
    }

   private:
    std::optional<T> end() {
      ended_ = true;  // the input is not asked again after it ended
      return std::nullopt;
    }

    std::unique_ptr<Iterator<T>> input_;
    int64_t num_shards_;
    int64_t to_skip_;
    bool ended_ = false;
    std::vector<int64_t> skipped_;  // row numbers read past
    std::shared_ptr<StageStatistics> stats_;
  };

  NodePtr<T> input_;
  int64_t num_shards_;
  int64_t index_;
};

}  // namespace kiln::data
