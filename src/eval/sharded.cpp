// Sharded evaluation over a c10d group: slice, classify, all-gather the predictions as CBOR.
#include "xlt/eval/sharded.h"

#include <nlohmann/json.hpp>

#include <algorithm>

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
  const int64_t n = dataset.size(), w = group->size(), r = group->rank();
  data::NliDataset slice;
  slice.lang = dataset.lang;
  slice.source = dataset.source;
  slice.format = dataset.format;
  slice.labels = dataset.labels;
  slice.report = dataset.report;
  slice.examples.assign(dataset.examples.begin() + n * r / w,
                        dataset.examples.begin() + n * (r + 1) / w);
  EvalOptions o = options;
  o.progress = options.progress && r == 0;
  const EvalPredictions mine = evaluate_nli(model, tokenizer, slice, o);
  const auto parts = group->all_gather_bytes(serialize_predictions(mine));
  EvalPredictions all;
  all.lang = mine.lang;
  all.label_names = mine.label_names;
  for (const auto& bytes : parts) {
    EvalPredictions p = deserialize_predictions(bytes);
    all.index.insert(all.index.end(), p.index.begin(), p.index.end());
    all.gold.insert(all.gold.end(), p.gold.begin(), p.gold.end());
    all.pred.insert(all.pred.end(), p.pred.begin(), p.pred.end());
    all.probs.insert(all.probs.end(), p.probs.begin(), p.probs.end());
    all.tokens += p.tokens;
    all.padded_tokens += p.padded_tokens;
    all.truncated += p.truncated;
    all.seconds = std::max(all.seconds, p.seconds);
  }
  return all;
}

}  // namespace xlt::eval
