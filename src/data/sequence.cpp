// from_sequence: the batch indices (shuffled or not) -> a parallel, ordered map calling get() ->
// prefetch; plus a stage that calls on_epoch_end() when an epoch completes.
#include "kiln/data/sequence.hpp"

namespace kiln::data {
namespace {

// Passes its input through and tells the sequence when a whole epoch has gone by.
class EpochEndNode : public Node<LabeledData> {
 public:
  EpochEndNode(NodePtr<LabeledData> input, std::shared_ptr<Sequence> sequence)
      : input_(std::move(input)), sequence_(std::move(sequence)) {}

  std::unique_ptr<Iterator<LabeledData>> make_iterator(IterationContext& context) const override {
    return std::make_unique<EpochEndIterator>(input_->make_iterator(context), sequence_);
  }
  int64_t cardinality() const override { return input_->cardinality(); }

 private:
  class EpochEndIterator : public Iterator<LabeledData> {
   public:
    EpochEndIterator(std::unique_ptr<Iterator<LabeledData>> input, std::shared_ptr<Sequence> sequence)
        : input_(std::move(input)), sequence_(std::move(sequence)) {}
    std::optional<LabeledData> next() override {
      if (epoch_ended_) return std::nullopt;  // the input is gone; the epoch stays ended
      std::optional<LabeledData> batch = input_->next();
      if (!batch && !epoch_ended_) {
        epoch_ended_ = true;
        input_.reset();  // stop the workers before the sequence changes state between epochs
        sequence_->on_epoch_end();
      }
      return batch;
    }

   private:
    std::unique_ptr<Iterator<LabeledData>> input_;
    std::shared_ptr<Sequence> sequence_;
    bool epoch_ended_ = false;
  };

  NodePtr<LabeledData> input_;
  std::shared_ptr<Sequence> sequence_;
};

}  // namespace

Dataset<LabeledData> from_sequence(std::shared_ptr<Sequence> sequence, const SequenceOptions& options) {
  if (!sequence) throw ValueError("from_sequence: the sequence is null");
  if (options.workers < 1) throw ValueError("from_sequence: workers must be at least 1, got " + std::to_string(options.workers));
  if (options.max_queue_size < 1) {
    throw ValueError("from_sequence: max_queue_size must be at least 1, got " + std::to_string(options.max_queue_size));
  }
  const int64_t batch_count = sequence->size();
  Dataset<int64_t> indices = range(batch_count);
  if (options.shuffle && batch_count > 1) indices = indices.shuffle(batch_count, options.seed);
  Dataset<LabeledData> batches =
      indices.map([sequence](int64_t index) { return sequence->get(index); }, options.workers, /*deterministic=*/true)
          .prefetch(options.max_queue_size);
  return Dataset<LabeledData>(std::make_shared<EpochEndNode>(batches.node(), std::move(sequence)));
}

}  // namespace kiln::data
