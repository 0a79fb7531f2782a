// The one place that decides how special tokens ([CLS], [SEP], <s>, </s>, padding) enter an
// analysis: which positions mean pooling averages over, and which rows/columns an attention map
// keeps. Sentence embeddings (embeddings.h) and attention maps (attention.h) both call these
// functions, so `--special keep|mark|exclude` means the same for every command. No libtorch.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "xlt/text/tokenizer.h"

namespace xlt::analysis {

enum class SpecialTokenPolicy {
  kKeep,     // special tokens are treated like any other token
  kMark,     // kept, but flagged in the outputs (attention.json `special`, figure labels)
  kExclude,  // dropped: not averaged by mean pooling, rows/columns removed from attention maps
};
// "keep" / "mark" / "exclude"; throws UsageError otherwise.
SpecialTokenPolicy parse_special_policy(const std::string& name);
std::string to_string(SpecialTokenPolicy policy);

enum class Pooling {
  kCls,   // the first token's vector (BERT's [CLS], XLM-R's <s>, XGLM's leading </s>)
  kMean,  // mean over the tokens the special-token policy keeps (never padding)
};
// "cls" / "mean"; throws UsageError otherwise.
Pooling parse_pooling(const std::string& name);
std::string to_string(Pooling pooling);

// Per position of `e`: 1 where the token is special (template token: special_tokens_mask) or
// padding (attention_mask 0), else 0.
std::vector<uint8_t> special_flags(const text::Encoding& e);

// Positions of `e` that an analysis keeps under `policy`, in order: every non-padding position,
// or (kExclude) every non-special one. When kExclude would leave nothing (an empty sentence is
// only template tokens), all non-padding positions are kept so that no row is empty.
std::vector<int64_t> kept_positions(const text::Encoding& e, SpecialTokenPolicy policy);

// Pooling weights over the positions of `e` (size e.size(), summing to 1): kCls puts 1 on the
// first token whatever the policy; kMean spreads 1 evenly over kept_positions(e, policy).
std::vector<float> pooling_weights(const text::Encoding& e, Pooling pooling,
                                   SpecialTokenPolicy policy);

}  // namespace xlt::analysis
