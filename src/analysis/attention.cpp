// Attention maps and their position-free measures (see attention.h).
#include "xlt/analysis/attention.h"

#include <c10/core/InferenceMode.h>

#include <cmath>

#include "xlt/analysis/embeddings.h"
#include "xlt/core/error.h"

namespace xlt::analysis {

AttentionMeasures attention_measures(const float* map, int64_t T,
                                     const std::vector<uint8_t>& special, bool causal) {
  AttentionMeasures m;
  if (T <= 0) return m;
  std::vector<int64_t> queries;
  for (int64_t i = 0; i < T; ++i) {
    if (!special[static_cast<size_t>(i)]) queries.push_back(i);
  }
  if (queries.empty()) {
    for (int64_t i = 0; i < T; ++i) queries.push_back(i);
  }
  int64_t normalized_rows = 0;
  for (int64_t i : queries) {
    const float* row = map + i * T;
    double h = 0.0, mass = 0.0, dist = 0.0;
    for (int64_t j = 0; j < T; ++j) {
      const double a = row[j];
      if (a > 0.0) h -= a * std::log(a);
      if (special[static_cast<size_t>(j)]) mass += a;
      dist += a * static_cast<double>(std::llabs(i - j));
    }
    m.entropy += h;
    m.special_mass += mass;
    m.distance += T > 1 ? dist / static_cast<double>(T - 1) : 0.0;
    const int64_t keys = causal ? i + 1 : T;
    if (keys > 1) {
      m.entropy_normalized += h / std::log(static_cast<double>(keys));
      ++normalized_rows;
    }
  }
  const double q = static_cast<double>(queries.size());
  m.entropy /= q;
  m.special_mass /= q;
  m.distance /= q;
  m.entropy_normalized =
      normalized_rows > 0 ? m.entropy_normalized / static_cast<double>(normalized_rows) : 0.0;
  return m;
}

AttentionMeasures measure_difference(const AttentionMeasures& a, const AttentionMeasures& b) {
  return {std::fabs(a.entropy - b.entropy), std::fabs(a.entropy_normalized - b.entropy_normalized),
          std::fabs(a.special_mass - b.special_mass), std::fabs(a.distance - b.distance)};
}

SentenceAttention sentence_attention(models::Model& model, const text::Encoding& encoding,
                                     const eval::CollateOptions& collate,
                                     const AttentionOptions& options) {
  const int L = static_cast<int>(model.config().num_hidden_layers);
  std::vector<int> layers = options.layers;
  if (layers.empty()) layers = parse_layers("all", L, 1);
  for (int l : layers) {
    if (l < 1 || l > L) {
      throw UsageError("attention layer " + std::to_string(l) + " is out of range: this model " +
                       "has layers 1.." + std::to_string(L));
    }
  }
  if (encoding.size() == 0) throw DataError("cannot show the attention of an empty encoding");
  SentenceAttention r;
  r.causal = model.kind() == models::ModelKind::kCausalLM;
  const auto all_flags = special_flags(encoding);
  r.positions = kept_positions(encoding, options.special);
  for (int64_t p : r.positions) {
    r.tokens.push_back(p < static_cast<int64_t>(encoding.tokens.size())
                           ? encoding.tokens[static_cast<size_t>(p)]
                           : std::to_string(encoding.ids[static_cast<size_t>(p)]));
    r.special.push_back(all_flags[static_cast<size_t>(p)]);
  }
  // Positions of real tokens (measures use all of them, whatever the policy).
  const auto real = kept_positions(encoding, SpecialTokenPolicy::kKeep);
  std::vector<uint8_t> real_flags;
  for (int64_t p : real) real_flags.push_back(all_flags[static_cast<size_t>(p)]);

  // On the host: the forward checks the inputs and plans packing there, then moves them.
  const eval::CollateOptions& copts = collate;
  const models::ModelInputs in = eval::collate(std::vector<text::Encoding>{encoding}, copts);
  models::ForwardOptions fo;
  fo.output_attentions = true;
  fo.compute_logits = false;
  c10::InferenceMode guard;
  const auto out = model.forward(in, fo);
  const auto index = [](const std::vector<int64_t>& p) { return at::tensor(p, at::kLong); };
  const at::Tensor real_idx = index(real), kept_idx = index(r.positions);
  for (int l : layers) {
    const at::Tensor att =
        out.attentions.at(static_cast<size_t>(l - 1))[0].to(at::kCPU, at::kFloat);
    r.num_heads = att.size(0);
    LayerAttention la;
    la.layer = l;
    const at::Tensor mean_full =
        att.mean(0).index_select(0, real_idx).index_select(1, real_idx).contiguous();
    la.measures =
        attention_measures(mean_full.data_ptr<float>(), mean_full.size(0), real_flags, r.causal);
    at::Tensor shown = options.per_head ? att : att.mean(0, /*keepdim=*/true);
    shown = shown.index_select(1, kept_idx).index_select(2, kept_idx);
    if (options.special == SpecialTokenPolicy::kExclude) {
      // After the head mean (docs/analysis.md): heads weigh by the attention they give the
      // content tokens, so a head parked on [SEP] does not count as much as one reading the text.
      const at::Tensor sums = shown.sum(-1, /*keepdim=*/true);
      shown = shown / at::where(sums > 0, sums, at::ones_like(sums));
    }
    shown = shown.contiguous();
    la.heads = shown.size(0);
    la.weights.assign(shown.data_ptr<float>(), shown.data_ptr<float>() + shown.numel());
    r.layers.push_back(std::move(la));
  }
  return r;
}

SentenceAttention sentence_attention(models::Model& model, const text::Tokenizer& tokenizer,
                                     const std::string& sentence, const AttentionOptions& options) {
  text::EncodeOptions eo;
  eo.truncation = text::TruncationStrategy::kLongestFirst;
  eo.max_length = static_cast<size_t>(effective_max_length(model, options.max_length));
  return sentence_attention(model, tokenizer.encode(sentence, eo),
                            eval::collate_options_for(tokenizer), options);
}

}  // namespace xlt::analysis
