// Sharded evaluation over a c10d group: each rank classifies every W-th batch of the one-process
// plan, the logits are gathered and summed, every rank gets the full predictions.
#include "xlt/eval/sharded.h"

#include <algorithm>
#include <cstring>

#include "xlt/core/error.h"

namespace xlt::eval {

EvalPredictions evaluate_nli_sharded(models::Model& model, const text::Tokenizer& tokenizer,
                                     const data::NliDataset& dataset, const EvalOptions& options,
                                     distributed::Group* group) {
  if (group == nullptr || group->size() == 1)
    return evaluate_nli(model, tokenizer, dataset, options);
  EvalOptions o = options;
  o.progress = options.progress && group->rank() == 0;
  o.shard_index = group->rank();
  o.shard_count = group->size();
  // Each rank's logits are 0 outside its own batches, so the sum over ranks is exact: every
  // element has one non-zero term. Bytes, not a tensor all-reduce, so it works the same over
  // Gloo and NCCL whatever device the model is on.
  o.combine_logits = [group](at::Tensor& logits, int64_t& padded_tokens) {
    const at::Tensor mine = logits.contiguous();
    const auto floats = static_cast<size_t>(mine.numel());
    std::string bytes(sizeof(int64_t) + floats * sizeof(float), '\0');
    std::memcpy(bytes.data(), &padded_tokens, sizeof(int64_t));
    std::memcpy(bytes.data() + sizeof(int64_t), mine.data_ptr<float>(), floats * sizeof(float));
    const std::vector<std::string> parts = group->all_gather_bytes(bytes);
    at::Tensor sum = at::zeros_like(mine);
    int64_t padded = 0;
    for (const std::string& part : parts) {
      if (part.size() != bytes.size()) {
        throw DataError("sharded evaluation: ranks disagree on the number of examples (" +
                        std::to_string(part.size()) + " vs " + std::to_string(bytes.size()) +
                        " bytes of logits); do all ranks read the same data?");
      }
      int64_t p = 0;
      std::memcpy(&p, part.data(), sizeof(int64_t));
      padded += p;
      sum.add_(
          at::from_blob(const_cast<char*>(part.data()) + sizeof(int64_t), mine.sizes(), at::kFloat)
              .clone());
    }
    logits = sum;
    padded_tokens = padded;
  };
  return evaluate_nli(model, tokenizer, dataset, o);
}

}  // namespace xlt::eval
