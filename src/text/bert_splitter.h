// BERT's normalizer and pre-tokenizer: text cleaning (control characters dropped, whitespace
// unified), spaces around CJK ideographs, NFC (the slow Python tokenizer only), optional
// lowercasing and accent stripping, whitespace split, punctuation split.
//
// Two flavours: kSlow reproduces transformers' BasicTokenizer (Python str semantics: NFC first,
// str.lower() then accent stripping per word, str.split() whitespace, never_split), kFast the Rust
// BertNormalizer + BertPreTokenizer from tokenizer.json (no NFC, strip accents then per-character
// lowercase, Unicode White_Space).
//
// `bert_normalize` and `bert_pre_tokenize` are the components one by one (clear, slow); the
// BertSplitter fuses them into one pass with an ASCII fast path and falls back to the components
// for any word that normalisation would change. Tests check the two agree.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "text/unicode.h"

namespace xlt::text {

enum class BertFlavor { kSlow, kFast };

struct BertOptions {
  BertFlavor flavor = BertFlavor::kSlow;
  bool clean_text = true;  // the slow tokenizer always cleans
  bool handle_chinese_chars = true;
  bool lowercase = false;
  std::optional<bool> strip_accents;  // unset: follow `lowercase`
  // transformers' do_basic_tokenize=False: only split on whitespace before WordPiece.
  bool basic_tokenize = true;
  // Words kept whole and looked up directly (tokenizer_config.json never_split).
  std::unordered_set<std::string> never_split;

  bool strips_accents() const { return strip_accents ? *strip_accents : lowercase; }
};

// One pre-tokenized word with, per byte of `text`, the original byte range it came from.
struct BertWord {
  std::string text;
  std::vector<Offset> align;
  bool whole = false;  // a never_split word: no WordPiece
};

// The normalizer on its own: for kSlow cleaning, CJK spacing and NFC; for kFast cleaning, CJK
// spacing, accent stripping and lowercasing. `origin` is added to every source offset.
uni::AlignedChars bert_normalize(std::string_view text, std::size_t origin,
                                 const BertOptions& options);
// The pre-tokenizer on normalized characters: whitespace split, then (kSlow) never_split,
// lowercasing and accent stripping per word, then punctuation split.
std::vector<BertWord> bert_pre_tokenize(const uni::AlignedChars& normalized,
                                        const BertOptions& options);

class BertWordSink {
 public:
  virtual ~BertWordSink() = default;
  // `align` per byte of `word`, or nullptr when `word` is the original bytes at `origin`.
  virtual void word(std::string_view word, const Offset* align, std::size_t origin, bool whole) = 0;
};

class BertSplitter {
 public:
  explicit BertSplitter(BertOptions options);
  // Feeds the words of `text` (valid UTF-8, no added tokens in it) to `sink`, in order.
  void split(std::string_view text, std::size_t origin, BertWordSink& sink) const;
  const BertOptions& options() const { return options_; }

 private:
  void clean_word(std::string_view word, std::size_t origin, BertWordSink& sink) const;
  void general_word(std::string_view raw, std::size_t origin, BertWordSink& sink) const;
  bool is_separator(char32_t c) const;

  enum AsciiClass : unsigned char { kWordChar, kUpper, kSpace, kRemoved };
  BertOptions options_;
  AsciiClass ascii_class_[128];
  bool ascii_punct_[128];
  bool lower_or_strip_;
};

}  // namespace xlt::text
