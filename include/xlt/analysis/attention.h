// Attention maps of single sentences and position-free measures of how a layer attends, so that
// parallel sentences (whose tokens do not line up) can be compared layer by layer.
//
// Layers are numbered 1..L: layer l is the attention inside transformer layer l (Hugging Face's
// `attentions[l - 1]`). Maps are softmax probabilities, rows = query tokens, columns = key
// tokens; encoders give square full maps, causal LMs (XGLM) lower-triangular ones.
//
// Measures of one head-averaged map A over the T real tokens (special tokens included), with
// Q = the non-special query positions (all positions when every token is special):
//   entropy             mean over i in Q of H_i = -sum_j A_ij ln A_ij (nats; 0 ln 0 = 0)
//   entropy_normalized  mean over i in Q with n_i > 1 of H_i / ln n_i, where n_i is the number
//                       of keys row i may attend to (T; causal: i + 1); in [0, 1], 1 = uniform
//   special_mass        mean over i in Q of sum over special keys j of A_ij
//   distance            mean over i in Q of sum_j A_ij |i - j| / (T - 1) (0 when T = 1); in
//                       [0, 1], 0 = every token attends to itself
// Two sentences are compared per layer by the absolute difference of each measure.
//
// Usage:
//   xlt::analysis::AttentionOptions o;  o.layers = {1, 2};
//   auto a = xlt::analysis::sentence_attention(*model, *tok, "The cat sleeps.", o);
//   a.layers[0].weights  // [1, n, n] head mean over a.tokens (policy applied)
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "xlt/analysis/tokens.h"
#include "xlt/eval/collate.h"
#include "xlt/models/model.h"
#include "xlt/text/tokenizer.h"

namespace xlt::analysis {

struct AttentionMeasures {
  double entropy = 0.0;
  double entropy_normalized = 0.0;
  double special_mass = 0.0;
  double distance = 0.0;
};

// The measures of a row-stochastic [T, T] map (row-major) with per-token special flags.
// `causal` only changes n_i of entropy_normalized.
AttentionMeasures attention_measures(const float* map, int64_t T,
                                     const std::vector<uint8_t>& special, bool causal);
// |a - b| for each measure.
AttentionMeasures measure_difference(const AttentionMeasures& a, const AttentionMeasures& b);

struct AttentionOptions {
  std::vector<int> layers;  // 1..L; empty = all
  bool per_head = false;    // false: the mean over heads; true: every head
  // kKeep/kMark: every real token; kExclude: special-token rows and columns are dropped and each
  // remaining row is renormalised to sum to 1 (the attention among the content tokens).
  SpecialTokenPolicy special = SpecialTokenPolicy::kKeep;
  int64_t max_length = 512;  // tokens (specials included) for the tokenizer overload
};

struct LayerAttention {
  int layer = 0;               // 1..L
  int64_t heads = 1;           // maps in `weights`: 1 (head mean) or the model's head count
  std::vector<float> weights;  // [heads, n, n] over SentenceAttention::tokens
  AttentionMeasures measures;  // of the head-mean map over all real tokens (policy-free)
};

struct SentenceAttention {
  std::vector<std::string> tokens;  // the n tokens shown (after the policy)
  std::vector<uint8_t> special;     // per shown token: 1 = special
  std::vector<int64_t> positions;   // each shown token's position in the encoding
  int64_t num_heads = 0;            // heads per layer of the model
  bool causal = false;
  std::vector<LayerAttention> layers;  // in the order asked for
};

// Attention of one unpadded encoding (one forward pass, batch of one, no padding).
SentenceAttention sentence_attention(models::Model& model, const text::Encoding& encoding,
                                     const eval::CollateOptions& collate,
                                     const AttentionOptions& options);
// Tokenises `sentence` (truncated to options.max_length, at most what the model's positions
// cover: effective_max_length) first.
SentenceAttention sentence_attention(models::Model& model, const text::Tokenizer& tokenizer,
                                     const std::string& sentence, const AttentionOptions& options);

}  // namespace xlt::analysis
