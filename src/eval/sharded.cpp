// Sharded evaluation over a c10d group: each rank classifies every W-th batch of the one-process
// plan, the logits are gathered and summed, every rank gets the full predictions.
#include "xlt/eval/sharded.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstring>

#include "xlt/core/error.h"

namespace xlt::eval {

std::string serialize_predictions(const EvalPredictions& p) {
  nlohmann::json j = {{"lang", p.lang},           {"label_names", p.label_names},
                      {"index", p.index},         {"gold", p.gold},
                      {"pred", p.pred},           {"probs", p.probs},
                      {"tokens", p.tokens},       {"padded_tokens", p.padded_tokens},
                      {"truncated", p.truncated}, {"seconds", p.seconds}};
  const auto bytes = nlohmann::json::to_cbor(j);
  return std::string(bytes.begin(), bytes.end());
}

EvalPredictions deserialize_predictions(const std::string& bytes) {
  const auto j = nlohmann::json::from_cbor(bytes);
  EvalPredictions p;
  p.lang = j.at("lang").get<std::string>();
  p.label_names = j.at("label_names").get<std::vector<std::string>>();
  p.index = j.at("index").get<std::vector<int64_t>>();
  p.gold = j.at("gold").get<std::vector<int>>();
  p.pred = j.at("pred").get<std::vector<int>>();
  p.probs = j.at("probs").get<std::vector<std::vector<float>>>();
  p.tokens = j.at("tokens").get<int64_t>();
  p.padded_tokens = j.at("padded_tokens").get<int64_t>();
  p.truncated = j.at("truncated").get<int64_t>();
  p.seconds = j.at("seconds").get<double>();
  return p;
}

EvalPredictions evaluate_nli_sharded(models::Model& model, const text::Tokenizer& tokenizer,
                                     const data::NliDataset& dataset, const EvalOptions& options,
                                     dist::Group* group) {
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
