// Sentence embeddings from any layer of a loaded model: one vector per sentence per layer,
// pooled from the token states Hugging Face returns as `hidden_states` (layer 0 = the embedding
// output, layer L = the last layer; for XGLM layer L is after the final LayerNorm, as in HF).
// Pooling and the treatment of special tokens follow tokens.h (one shared policy).
//
// Usage:
//   auto model = xlt::models::load_model(dir);  auto tok = xlt::text::load_tokenizer(dir);
//   xlt::analysis::EmbeddingOptions o;  o.layers = {0, 6, 12};  o.pooling = Pooling::kMean;
//   xlt::analysis::SentenceEmbeddings e = xlt::analysis::sentence_embeddings(*model, *tok, s, o);
//   e.matrices[k]  // [n, hidden] for layer e.layers[k]
//
// Runs on the model's device in inference mode; results are float32 on CPU. Not thread-safe
// for one model (see models::Model).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "xlt/analysis/matrix.h"
#include "xlt/analysis/tokens.h"
#include "xlt/eval/collate.h"
#include "xlt/models/model.h"
#include "xlt/text/tokenizer.h"

namespace xlt::analysis {

struct EmbeddingOptions {
  Pooling pooling = Pooling::kMean;
  // Mean pooling over non-special tokens by default (padding is never pooled).
  SpecialTokenPolicy special = SpecialTokenPolicy::kExclude;
  std::vector<int> layers;  // hidden_states indices 0..L; empty = all of them
  int64_t batch_size = 32;
  int64_t max_length = 128;  // tokens per sentence, special tokens included (truncation)
  bool progress = false;     // xlt::Progress bar on stderr
  std::string progress_label = "embed";
};

struct SentenceEmbeddings {
  int num_layers = 0;               // L of the model (hidden_states has L + 1 entries)
  std::vector<int> layers;          // the layers computed, in the order asked for
  std::vector<Matrix> matrices;     // matrices[k]: [n, hidden] for layers[k]
  std::vector<int64_t> num_tokens;  // tokens per sentence after truncation (specials included)
};

// Parses "all" (or empty) = first..num_layers, "last", or a comma-separated list of layer
// numbers ("0,6,12"; negative numbers count from the end: -1 = num_layers). Embeddings use
// first = 0 (hidden_states), attention first = 1. A layer named twice ("4,4", "12,-1") is kept
// once, at its first place. Throws UsageError for anything else or a layer outside
// first..num_layers.
std::vector<int> parse_layers(const std::string& spec, int num_layers, int first = 0);

// Embeds pre-tokenised sentences (unpadded encodings; attention_mask/special_tokens_mask as
// the tokenizer fills them). `collate` gives the pad id, padding side and token types; its
// device is replaced by the model's.
SentenceEmbeddings sentence_embeddings(models::Model& model,
                                       const std::vector<text::Encoding>& encodings,
                                       const eval::CollateOptions& collate,
                                       const EmbeddingOptions& options);

// The truncation length the tokenizer overloads use: `requested`, but no more than the model's
// positions cover (models::max_sequence_length; a longer sentence would otherwise stop the whole
// run in the forward pass), at least 1.
int64_t effective_max_length(const models::Model& model, int64_t requested);

// Tokenises `sentences` (truncated to effective_max_length), then embeds them.
SentenceEmbeddings sentence_embeddings(models::Model& model, const text::Tokenizer& tokenizer,
                                       const std::vector<std::string>& sentences,
                                       const EmbeddingOptions& options);

}  // namespace xlt::analysis
