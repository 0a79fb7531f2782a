// Perplexity of a causal LM (XGLM) over plain text with Hugging Face's sliding-window method
// ("Perplexity of fixed-length models"): windows of max_length tokens starting every `stride`
// tokens; each window scores only the tokens after the previous window's end, so every token is
// scored once with up to max_length - 1 tokens of context. Besides token-level perplexity it
// reports bits per byte and bits per character (total NLL in bits / UTF-8 bytes / code points of
// the text), which, unlike token perplexity, compare across languages and segmentations.
// Definitions and the line-joining convention: docs/eval.md.
//
// Usage:
//   auto model = xlt::models::load_model("xglm/");  auto tok = xlt::text::load_tokenizer("xglm/");
//   xlt::eval::PerplexityOptions opt;  opt.max_length = 512;  opt.stride = 256;
//   auto r = xlt::eval::text_perplexity(*model, *tok, lines, opt);
//   r.perplexity, r.bits_per_byte, r.bits_per_char
//
// Runs under inference mode on the model's device; restores the model's training flag. Not
// thread-safe for the same Model.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "xlt/models/model.h"
#include "xlt/text/tokenizer.h"

namespace xlt::eval {

// How the lines of a text file become token sequences.
enum class JoinMode {
  // One stream: every non-blank line encoded with the tokenizer's specials (XGLM prepends </s>),
  // then concatenated, so </s> separates lines as in XGLM's pretraining documents and context
  // flows across lines (HF's recipe also scores a whole test set as one stream). The stream's
  // first token (nothing to condition on) is not scored; each later </s> is, and stands for the
  // newline byte between two lines.
  kStream,
  // Each non-blank line is its own sequence (with its </s> prefix), windowed on its own; no
  // context crosses lines. Bytes/chars then exclude the newlines.
  kLines,
};
// "stream" / "lines"; UsageError otherwise.
JoinMode parse_join_mode(const std::string& name);
std::string join_mode_name(JoinMode mode);

// One window over a token sequence: model input = tokens [begin, end); tokens [score_from, end)
// are scored (each predicted from the positions before it inside the window).
struct Window {
  int64_t begin = 0;
  int64_t end = 0;
  int64_t score_from = 0;
  bool operator==(const Window& o) const {
    return begin == o.begin && end == o.end && score_from == o.score_from;
  }
};

// HF's loop: begin = 0, stride, 2 stride, ...; end = min(begin + max_length, n); tokens after the
// previous end are targets; stop once end == n. The sequence's first token is never a target
// (score_from >= 1). Throws UsageError unless 1 <= stride <= max_length and max_length >= 2.
std::vector<Window> sliding_windows(int64_t num_tokens, int64_t max_length, int64_t stride);

// Summed NLL (nats) of targets under the model, one causal forward for a right-padded batch.
// input_ids int64 [B, T]; attention_mask [B, T] (undefined = all 1); labels int64 [B, T] with
// -100 where not scored: labels[b, t] (t >= 1) is predicted from position t - 1, the standard
// shift. Unlike HF XGLMForCausalLM's built-in loss, no extra target (pad_token_id) is appended
// after the last position: that term is an artefact of HF's label shifting, not a token of the
// text. Logits are computed only at scored positions, in chunks, in float32 (vocabularies of
// 256k make full [B, T, V] logits costly).
struct TokenNll {
  at::Tensor nll;     // float32 [B, T]: -log p(labels[b, t] | tokens < t), 0 where not scored
  double total = 0;   // sum of nll (nats)
  int64_t count = 0;  // scored positions
};
TokenNll score_tokens(models::Model& model, const at::Tensor& input_ids,
                      const at::Tensor& attention_mask, const at::Tensor& labels);

struct PerplexityOptions {
  int64_t max_length = 0;  // 0 = the model's max_position_embeddings
  int64_t stride = 0;      // 0 = max_length / 2
  int64_t batch_size = 8;  // windows per forward pass
  JoinMode join = JoinMode::kStream;
  bool progress = true;
  std::string progress_label = "perplexity";
};

struct PerplexityResult {
  std::string lang;
  std::string source;
  int64_t lines = 0;          // non-blank lines used
  int64_t blank_lines = 0;    // skipped
  int64_t tokens = 0;         // tokens in all sequences, specials included
  int64_t scored_tokens = 0;  // tokens whose NLL was summed
  int64_t windows = 0;
  int64_t bytes = 0;         // UTF-8 bytes of the scored text (see JoinMode)
  int64_t chars = 0;         // Unicode code points of the same text
  double nll = 0;            // total NLL, nats
  double loss = 0;           // nll / scored_tokens (mean token NLL, nats)
  double perplexity = 0;     // exp(loss)
  double bits_per_byte = 0;  // nll / ln 2 / bytes
  double bits_per_char = 0;  // nll / ln 2 / chars
  double seconds = 0;
  nlohmann::json to_json() const;
};

// The lines of a text file as `xlt perplexity --text` reads them (data::read_utf8_lines: split at
// '\n', a '\r' before it and a leading byte-order mark dropped, the last line kept without a
// newline). FileNotFound "--text PATH: file not found" when it is missing; DataError
// "PATH:LINE: invalid UTF-8 ..." for text that is not UTF-8.
std::vector<std::string> read_text_lines(const std::string& path);

// Perplexity of `lines` (a text file's lines; invalid UTF-8 throws DataError naming the line).
// ConfigError when the model is not a causal LM.
PerplexityResult text_perplexity(models::Model& model, const text::Tokenizer& tokenizer,
                                 const std::vector<std::string>& lines,
                                 const PerplexityOptions& options = {});

// Perplexity of already tokenised sequences (each windowed separately); bytes/chars are left 0.
PerplexityResult sequences_perplexity(models::Model& model,
                                      const std::vector<std::vector<int64_t>>& sequences,
                                      int64_t pad_id, const PerplexityOptions& options);

}  // namespace xlt::eval
