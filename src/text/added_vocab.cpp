// Added-token splitting (see added_vocab.h), following transformers' slow tokenize(): split on
// every added token, then let each token's lstrip/rstrip flags strip Python whitespace
// (str.isspace) from the neighbouring text.
#include "text/added_vocab.h"

#include <algorithm>

#include "text/unicode.h"

namespace xlt::text {
namespace {

// Length of the whitespace run ending at `end` (going left, not past `begin`).
std::size_t trailing_space(std::string_view text, std::size_t begin, std::size_t end) {
  std::size_t e = end;
  while (e > begin) {
    std::size_t s = e - 1;
    while (s > begin && (static_cast<unsigned char>(text[s]) & 0xC0) == 0x80) --s;
    uni::Decoded d = uni::decode(text, s);
    if (d.len == 0 || !uni::is_python_space(d.cp)) break;
    e = s;
  }
  return end - e;
}

std::size_t leading_space(std::string_view text, std::size_t begin, std::size_t end) {
  std::size_t b = begin;
  while (b < end) {
    uni::Decoded d = uni::decode(text, b);
    if (d.len == 0 || !uni::is_python_space(d.cp)) break;
    b += d.len;
  }
  return b - begin;
}

}  // namespace

void AddedVocabulary::add(const AddedToken& token) {
  if (token.content.empty()) return;
  auto it = std::find_if(tokens_.begin(), tokens_.end(),
                         [&](const AddedToken& t) { return t.content == token.content; });
  if (it != tokens_.end()) {
    *it = token;
  } else {
    tokens_.push_back(token);
  }
  for (auto& v : by_first_byte_) v.clear();
  for (std::size_t i = 0; i < tokens_.size(); ++i) {
    by_first_byte_[static_cast<unsigned char>(tokens_[i].content[0])].push_back(i);
  }
  for (auto& v : by_first_byte_) {
    std::stable_sort(v.begin(), v.end(), [&](std::size_t a, std::size_t b) {
      return tokens_[a].content.size() > tokens_[b].content.size();
    });
  }
}

const AddedToken* AddedVocabulary::find(std::string_view content) const {
  for (const AddedToken& t : tokens_) {
    if (t.content == content) return &t;
  }
  return nullptr;
}

const AddedToken* AddedVocabulary::find_id(TokenId id) const {
  for (const AddedToken& t : tokens_) {
    if (t.id == id) return &t;
  }
  return nullptr;
}

void AddedVocabulary::split(std::string_view text, std::vector<Segment>& out) const {
  out.clear();
  std::size_t plain = 0, i = 0;
  const std::size_t n = text.size();
  while (i < n) {
    const auto& cands = by_first_byte_[static_cast<unsigned char>(text[i])];
    const AddedToken* match = nullptr;
    for (std::size_t idx : cands) {
      const std::string& c = tokens_[idx].content;
      if (text.compare(i, c.size(), c) == 0) {
        match = &tokens_[idx];
        break;
      }
    }
    if (!match) {
      ++i;
      continue;
    }
    if (i > plain) out.push_back({plain, i, nullptr});
    out.push_back({i, i + match->content.size(), match});
    i += match->content.size();
    plain = i;
  }
  if (n > plain) out.push_back({plain, n, nullptr});
  if (out.size() <= 1) return;

  std::vector<bool> removed(out.size(), false);
  for (std::size_t k = 0; k < out.size(); ++k) {
    const AddedToken* t = out[k].token;
    if (!t) continue;
    Segment* left = k > 0 && !removed[k - 1] ? &out[k - 1] : nullptr;
    Segment* right = k + 1 < out.size() ? &out[k + 1] : nullptr;
    if (t->rstrip && right && !right->token) {
      right->begin += leading_space(text, right->begin, right->end);
    }
    if (t->lstrip && left && !left->token) {
      left->end -= trailing_space(text, left->begin, left->end);
    }
    if (t->single_word) {
      // Not a word of its own: the token text stays in the neighbouring plain text.
      if (left && left->end > left->begin && text[left->end - 1] != ' ') {
        left->end = out[k].end;
        left->token = nullptr;
        removed[k] = true;
      } else if (right && right->end > right->begin && text[right->begin] != ' ') {
        right->begin = out[k].begin;
        right->token = nullptr;
        removed[k] = true;
      }
    }
  }
  std::size_t w = 0;
  for (std::size_t k = 0; k < out.size(); ++k) {
    if (removed[k] || out[k].end <= out[k].begin) continue;
    out[w++] = out[k];
  }
  out.resize(w);
}

}  // namespace xlt::text
