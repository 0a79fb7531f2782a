// The shared implementation behind every xlt::text::Tokenizer: added-token splitting, the model
// hook, the post-processor (template, truncation, padding) and decoding. Concrete tokenizers
// (WordPiece, SentencePiece) implement the model hooks; the loader fills in the rest.
#pragma once

#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "text/added_vocab.h"
#include "text/pieces.h"
#include "xlt/text/tokenizer.h"

namespace xlt::text {

// One element of the post-processor's template: a special token or one of the sequences.
struct TemplatePiece {
  bool is_sequence = false;
  int sequence = 0;  // 0 = A, 1 = B (when is_sequence)
  TokenId id = -1;   // special token (when !is_sequence)
  std::string token;
  std::int32_t type_id = 0;
};

// Cuts `a` (and `b`) so that they fit `max_length` together with `num_special` template tokens,
// with Hugging Face's algorithm for the backend (Python's one-token-at-a-time longest_first for
// kSlow, the Rust length formula for kFast). Returns the number of tokens removed. When the
// strategy cannot reach max_length (e.g. only_second with a short second text) kSlow cuts
// nothing, as the Python tokenizer does after logging an error, and kFast throws TokenizerError
// as the Rust one does (SequenceTooShort, SecondSequenceNotProvided). `side` picks the end that
// is cut; the token counts do not depend on it, in either backend.
std::size_t truncate_pieces(Pieces& a, Pieces* b, std::size_t max_length, std::size_t num_special,
                            TruncationStrategy strategy, Backend backend,
                            TruncationSide side = TruncationSide::kRight);

// Python's str.strip() (Unicode whitespace as str.isspace()).
std::string_view python_strip(std::string_view s);
// transformers' clean_up_tokenization (" ." -> ".", " n't" -> "n't", ...).
std::string clean_up_tokenization(std::string s);

class PipelineTokenizer : public Tokenizer {
 public:
  Encoding encode(std::string_view text, const EncodeOptions& options) const override;
  Encoding encode_pair(std::string_view text, std::string_view text_pair,
                       const EncodeOptions& options) const override;
  std::vector<std::string> tokenize(std::string_view text) const override;
  std::string decode(const std::vector<TokenId>& ids, const DecodeOptions& options) const override;
  std::optional<TokenId> token_to_id(std::string_view token) const override;
  std::string id_to_token(TokenId id) const override;
  std::size_t vocab_size() const override { return vocab_size_; }
  std::size_t num_special_tokens_to_add(bool pair) const override;
  const SpecialTokens& special_tokens() const override { return special_; }
  const TokenizerInfo& info() const override { return info_; }

  // Tokens of `text` (HF tokenize + convert_tokens_to_ids), offsets into `text`.
  void tokenize_to(std::string_view text, bool replace_invalid, Pieces& out) const;

  // Set up by the loader.
  AddedVocabulary added;
  std::vector<TemplatePiece> single_template;
  std::vector<TemplatePiece> pair_template;
  SpecialTokens special_;
  TokenizerInfo info_;
  std::size_t vocab_size_ = 0;
  bool clean_up_tokenization_spaces = true;
  // Ids decode(skip_special_tokens=True) drops (HF all_special_ids).
  std::unordered_set<TokenId> all_special_ids;
  // Added tokens decode() keeps apart from the model's text (HF legacy_added_tokens).
  std::unordered_set<std::string> legacy_added_tokens;

  // Registers the special tokens: fills all_special_ids from special_.
  void finish_setup();

 protected:
  // The model on one piece of plain text (valid UTF-8, no added tokens in it); offsets are
  // `origin` + the position in `text`.
  virtual void tokenize_plain(std::string_view text, std::size_t origin, Pieces& out) const = 0;
  virtual std::optional<TokenId> model_token_to_id(std::string_view token) const = 0;
  // Empty optional for an id the model does not know.
  virtual std::optional<std::string> model_id_to_token(TokenId id) const = 0;
  // The Rust decoder of a tokenizer.json (kFast); the default joins with spaces.
  virtual std::string fast_decode(const std::vector<std::string>& tokens) const;

 private:
  Encoding post_process(Pieces& a, Pieces* b, const EncodeOptions& options) const;
  void tokenize_valid(std::string_view text, Pieces& out) const;
};

// Returns `length`, or throws TokenizerError when it is too large to pad to (no max_length given
// and no model_max_length configured).
std::size_t checked_pad_length(std::size_t length);
// Pads one encoding to `length` on `side` with the pad token.
void pad_encoding(Encoding& e, std::size_t length, const SpecialToken& pad, PaddingSide side);

}  // namespace xlt::text
