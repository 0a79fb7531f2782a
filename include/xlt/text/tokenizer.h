// Tokenizers that match Hugging Face token for token: mBERT's WordPiece (BertTokenizer from
// vocab.txt, or the Rust `tokenizers` pipeline from tokenizer.json) and the SentencePiece-based
// XLM-R and XGLM tokenizers (through libsentencepiece, with fairseq's id layout). No libtorch.
//
// The pipeline has Hugging Face's shape: added/special tokens typed in the text are split out
// first, then normalizer -> pre-tokenizer -> model on each remaining piece, then the
// post-processor adds the model's template ([CLS] A [SEP] B [SEP], <s> A </s></s> B </s>,
// </s> A </s></s> B), truncates and pads.
//
// Usage:
//   auto tok = xlt::text::load_tokenizer("path/to/model_or_tokenizer_folder");
//   xlt::text::EncodeOptions opt;
//   opt.truncation = xlt::text::TruncationStrategy::kLongestFirst;
//   opt.max_length = 128;
//   xlt::text::Encoding e = tok->encode_pair("premise", "hypothesis", opt);
//   // e.ids, e.token_type_ids, e.attention_mask: what tokenizer(text, text_pair, ...) returns.
//   std::vector<xlt::text::Encoding> batch = tok->encode_batch(texts, opt);  // multi-threaded
//
// Offsets are BYTE offsets [begin, end) into the UTF-8 string that was passed in (the first or
// second text, see Encoding::sequence_ids). A token's range covers the original characters it
// came from, so text.substr(begin, end - begin) slices back even when normalisation changed
// them (NFC, lowercasing, accent stripping, SentencePiece's NFKC).
//
// Thread safety: a loaded Tokenizer is immutable; every const method may be called from many
// threads at once.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace xlt::text {

using TokenId = std::int32_t;

// Byte range [begin, end) into one input text.
struct Offset {
  std::size_t begin = 0;
  std::size_t end = 0;
  bool operator==(const Offset& o) const { return begin == o.begin && end == o.end; }
};

// One encoded sequence (or pair), aligned position by position. Field names follow Hugging Face.
struct Encoding {
  std::vector<TokenId> ids;  // input_ids
  // Token strings, special tokens included. For SentencePiece models an unknown piece keeps its
  // surface text (as HF's tokenize() shows it) while its id is <unk>'s.
  std::vector<std::string> tokens;
  std::vector<std::int32_t> token_type_ids;
  std::vector<std::int32_t> attention_mask;       // 1 = real token, 0 = padding
  std::vector<std::int32_t> special_tokens_mask;  // 1 = added by the template or padding
  std::vector<Offset> offsets;                    // {0,0} for template tokens and padding
  // 0 = from the first text, 1 = from the second, -1 = template special token or padding.
  std::vector<std::int32_t> sequence_ids;
  // Tokens removed by truncation (both sequences together).
  std::size_t num_truncated = 0;

  std::size_t size() const { return ids.size(); }
  // Ids / tokens of one sequence (0 or 1) without template tokens and padding, in order.
  std::vector<TokenId> sequence_token_ids(int sequence) const;
  std::vector<std::string> sequence_tokens(int sequence) const;
};

enum class TruncationStrategy {
  kNone,
  // Hugging Face's longest_first: remove from the longer sequence one token at a time.
  kLongestFirst,
  kOnlyFirst,
  kOnlySecond,
};

enum class PaddingStrategy {
  kNone,
  kLongest,    // to the longest encoding of the batch (no-op for a single encode)
  kMaxLength,  // to max_length
};

enum class PaddingSide { kRight, kLeft };
// Which end of a text truncation cuts (tokenizer_config.json's truncation_side).
enum class TruncationSide { kRight, kLeft };

struct EncodeOptions {
  bool add_special_tokens = true;
  TruncationStrategy truncation = TruncationStrategy::kNone;
  PaddingStrategy padding = PaddingStrategy::kNone;
  // Total length including special tokens. 0 = the tokenizer's model_max_length when truncating
  // or padding to max_length is asked for.
  std::size_t max_length = 0;
  std::size_t pad_to_multiple_of = 0;  // 0 = off
  // Invalid UTF-8 in the input throws TokenizerError naming the byte offset, unless this is set:
  // then each maximal invalid subsequence is treated as U+FFFD (as Python's
  // bytes.decode(errors="replace") does) and offsets still index the original bytes.
  bool replace_invalid_utf8 = false;
};

struct DecodeOptions {
  bool skip_special_tokens = false;
  // Unset = the tokenizer's clean_up_tokenization_spaces (tokenizer_config.json; HF default true).
  std::optional<bool> clean_up_tokenization_spaces;
  bool spaces_between_special_tokens = true;
};

enum class TokenizerFamily {
  kBert,        // WordPiece, [CLS] A [SEP] B [SEP], token types 0/1
  kXlmRoberta,  // SentencePiece unigram, <s> A </s></s> B </s>, token types all 0
  kXglm,        // SentencePiece BPE, </s> A </s></s> B, token types all 0
};
// "bert", "xlm-roberta", "xglm".
std::string family_name(TokenizerFamily family);

enum class Backend {
  kSlow,  // matches transformers' Python tokenizer (vocab.txt / sentencepiece.bpe.model)
  kFast,  // matches the Rust `tokenizers` pipeline described by tokenizer.json
};

struct SpecialToken {
  std::string content;  // empty when the tokenizer has no such token
  TokenId id = -1;      // -1 when absent
  bool present() const { return id >= 0; }
};

struct SpecialTokens {
  SpecialToken pad, unk, cls, sep, mask, bos, eos;
  std::vector<SpecialToken> additional;  // e.g. XGLM's <madeupword0..6>
};

struct TokenizerInfo {
  TokenizerFamily family = TokenizerFamily::kBert;
  Backend backend = Backend::kSlow;
  std::string tokenizer_class;       // e.g. "BertTokenizer", "XLMRobertaTokenizer", "XGLMTokenizer"
  bool uses_token_type_ids = false;  // BERT: the model has a token-type embedding that varies
  std::size_t model_max_length = 512;
  PaddingSide padding_side = PaddingSide::kRight;
  TruncationSide truncation_side = TruncationSide::kRight;
  bool do_lower_case = false;
  std::filesystem::path source;  // the file the vocabulary came from
};

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // tokenizer(text) / tokenizer(text, text_pair) with the given options.
  virtual Encoding encode(std::string_view text, const EncodeOptions& options = {}) const = 0;
  virtual Encoding encode_pair(std::string_view text, std::string_view text_pair,
                               const EncodeOptions& options = {}) const = 0;

  // Encodes every text on `num_threads` threads (0 = hardware concurrency), then pads the batch
  // as options.padding asks. Results are in input order. The first error is rethrown.
  std::vector<Encoding> encode_batch(const std::vector<std::string>& texts,
                                     const EncodeOptions& options = {}, int num_threads = 0) const;
  std::vector<Encoding> encode_pair_batch(
      const std::vector<std::pair<std::string, std::string>>& pairs,
      const EncodeOptions& options = {}, int num_threads = 0) const;

  // Pads encodings in place (kLongest: to the longest one; kMaxLength: to options.max_length).
  void pad(std::vector<Encoding>& batch, const EncodeOptions& options) const;

  // HF tokenize(text): tokens without the template's special tokens.
  virtual std::vector<std::string> tokenize(std::string_view text) const = 0;

  // HF decode(ids, ...).
  virtual std::string decode(const std::vector<TokenId>& ids,
                             const DecodeOptions& options = {}) const = 0;
  // HF convert_tokens_to_string(tokens).
  virtual std::string convert_tokens_to_string(const std::vector<std::string>& tokens) const = 0;

  // Id of a token string, or nullopt when it is not in the vocabulary (HF would return unk).
  virtual std::optional<TokenId> token_to_id(std::string_view token) const = 0;
  // HF convert_ids_to_tokens(id). Throws TokenizerError for an id outside [0, vocab_size()).
  virtual std::string id_to_token(TokenId id) const = 0;
  // len(tokenizer): the number of embedding rows the ids need.
  virtual std::size_t vocab_size() const = 0;

  // Number of tokens the template adds (HF num_special_tokens_to_add(pair)).
  virtual std::size_t num_special_tokens_to_add(bool pair) const = 0;

  virtual const SpecialTokens& special_tokens() const = 0;
  virtual const TokenizerInfo& info() const = 0;
};

struct LoadOptions {
  // Ignore tokenizer.json and load the slow tokenizer's files (`xlt tokenize --slow`).
  bool prefer_slow = false;
  // Override tokenizer_config.json's do_lower_case (BERT only).
  std::optional<bool> do_lower_case;
};

// Loads a tokenizer from a model folder, a folder holding only tokenizer files, or a tokenizer
// file (vocab.txt, tokenizer.json, sentencepiece.bpe.model); a tokenizer_config.json /
// special_tokens_map.json beside it is read. In a folder, tokenizer.json is used when present
// (as AutoTokenizer does) unless options.prefer_slow; tokenizer_config.json's tokenizer_class
// (else config.json's model_type, else the files present) says which tokenizer it is.
// Throws TokenizerError (one clear message naming the file) for a missing or malformed file, a
// vocabulary with duplicates or without its special tokens, or an unsupported tokenizer type.
std::unique_ptr<Tokenizer> load_tokenizer(const std::filesystem::path& path,
                                          const LoadOptions& options = {});

}  // namespace xlt::text
