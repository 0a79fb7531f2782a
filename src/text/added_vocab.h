// Added tokens (special tokens and tokens added on top of the model's vocabulary): found in the
// raw text before the model sees it, as transformers' tokenize() does with its Trie, including
// the AddedToken flags lstrip (eat whitespace on the left), rstrip (on the right) and
// single_word.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "xlt/text/tokenizer.h"

namespace xlt::text {

struct AddedToken {
  std::string content;
  TokenId id = -1;
  bool special = true;
  bool lstrip = false;
  bool rstrip = false;
  bool single_word = false;
  bool normalized = false;
};

class AddedVocabulary {
 public:
  // Adds or replaces (same content) a token.
  void add(const AddedToken& token);
  const std::vector<AddedToken>& tokens() const { return tokens_; }
  const AddedToken* find(std::string_view content) const;
  const AddedToken* find_id(TokenId id) const;
  bool empty() const { return tokens_.empty(); }

  // A piece of the input: plain text for the model (token == nullptr) or one added token.
  struct Segment {
    std::size_t begin;
    std::size_t end;
    const AddedToken* token;
  };
  // Splits `text` on added tokens (leftmost match, longest at that position), applies the
  // strip/single_word flags to the neighbouring text and drops empty text pieces.
  void split(std::string_view text, std::vector<Segment>& out) const;

 private:
  std::vector<AddedToken> tokens_;
  // Per first byte: indices into tokens_, longest content first.
  std::vector<std::vector<std::size_t>> by_first_byte_ = std::vector<std::vector<std::size_t>>(256);
};

}  // namespace xlt::text
