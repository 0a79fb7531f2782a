// Special-token policy shared by sentence embeddings and attention maps (see tokens.h).
#include "xlt/analysis/tokens.h"

#include "xlt/core/error.h"

namespace xlt::analysis {

SpecialTokenPolicy parse_special_policy(const std::string& name) {
  if (name == "keep") return SpecialTokenPolicy::kKeep;
  if (name == "mark") return SpecialTokenPolicy::kMark;
  if (name == "exclude") return SpecialTokenPolicy::kExclude;
  throw UsageError("special-token policy: expected keep, mark or exclude, got '" + name + "'");
}

std::string to_string(SpecialTokenPolicy policy) {
  switch (policy) {
    case SpecialTokenPolicy::kKeep:
      return "keep";
    case SpecialTokenPolicy::kMark:
      return "mark";
    case SpecialTokenPolicy::kExclude:
      return "exclude";
  }
  return "keep";
}

Pooling parse_pooling(const std::string& name) {
  if (name == "cls") return Pooling::kCls;
  if (name == "mean") return Pooling::kMean;
  throw UsageError("pooling: expected cls or mean, got '" + name + "'");
}

std::string to_string(Pooling pooling) {
  return pooling == Pooling::kCls ? "cls" : "mean";
}

std::vector<uint8_t> special_flags(const text::Encoding& e) {
  std::vector<uint8_t> f(e.size(), 0);
  for (size_t t = 0; t < e.size(); ++t) {
    const bool special = t < e.special_tokens_mask.size() && e.special_tokens_mask[t] != 0;
    const bool padding = t < e.attention_mask.size() && e.attention_mask[t] == 0;
    f[t] = special || padding ? 1 : 0;
  }
  return f;
}

std::vector<int64_t> kept_positions(const text::Encoding& e, SpecialTokenPolicy policy) {
  const auto flags = special_flags(e);
  std::vector<int64_t> real, content;
  for (size_t t = 0; t < e.size(); ++t) {
    const bool padding = t < e.attention_mask.size() && e.attention_mask[t] == 0;
    if (padding) continue;
    real.push_back(static_cast<int64_t>(t));
    if (!flags[t]) content.push_back(static_cast<int64_t>(t));
  }
  if (policy == SpecialTokenPolicy::kExclude && !content.empty()) return content;
  return real;
}

std::vector<float> pooling_weights(const text::Encoding& e, Pooling pooling,
                                   SpecialTokenPolicy policy) {
  std::vector<float> w(e.size(), 0.0f);
  if (e.size() == 0) return w;
  if (pooling == Pooling::kCls) {
    w[0] = 1.0f;
    return w;
  }
  const auto keep = kept_positions(e, policy);
  for (int64_t t : keep) w[static_cast<size_t>(t)] = 1.0f / static_cast<float>(keep.size());
  return w;
}

}  // namespace xlt::analysis
