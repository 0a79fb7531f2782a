// The WordPiece model (BERT): greedy longest-match-first over a vocabulary, continuation pieces
// prefixed with "##", words longer than max_input_chars_per_word characters become [UNK], and a
// word with any unmatched remainder becomes a single [UNK] (transformers' WordpieceTokenizer and
// the Rust WordPiece model agree on all of this).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "text/pieces.h"

namespace xlt::text {

class WordPiece {
 public:
  // `vocab[i]` is the token with id i. Throws TokenizerError naming `source` and both lines
  // when a token appears twice, or when `unk_token` is missing.
  WordPiece(std::vector<std::string> vocab, std::string unk_token, std::string prefix,
            std::size_t max_input_chars_per_word, const std::string& source);

  // Appends the pieces of one pre-tokenized word. `align` gives, per byte of `word`, the
  // original byte range it came from; nullptr means the word is the original bytes starting at
  // `origin` unchanged.
  void tokenize_word(std::string_view word, const Offset* align, std::size_t origin,
                     Pieces& out) const;

  std::optional<TokenId> find(std::string_view token) const { return vocab_.find(token); }
  const std::string& token(TokenId id) const { return tokens_[static_cast<std::size_t>(id)]; }
  std::size_t size() const { return tokens_.size(); }
  TokenId unk_id() const { return unk_id_; }
  const std::string& prefix() const { return prefix_; }

 private:
  std::vector<std::string> tokens_;
  StringIdMap vocab_;         // every token
  StringIdMap continuation_;  // tokens starting with the prefix, keyed without it
  std::string unk_token_;
  TokenId unk_id_ = -1;
  std::string prefix_;
  std::size_t max_chars_;
};

}  // namespace xlt::text
