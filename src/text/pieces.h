// Internal building blocks shared by the tokenizer components: the token list a model produces
// for one piece of text, and a hash map from token strings to ids keyed by string_view (no
// allocation per lookup on the hot path).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "xlt/text/tokenizer.h"

namespace xlt::text {

// Tokens of one sequence before the template is applied.
struct Pieces {
  std::vector<TokenId> ids;
  std::vector<std::string> tokens;
  std::vector<Offset> offsets;

  std::size_t size() const { return ids.size(); }
  void clear() {
    ids.clear();
    tokens.clear();
    offsets.clear();
  }
  void push(TokenId id, std::string_view token, Offset offset) {
    ids.push_back(id);
    tokens.emplace_back(token);
    offsets.push_back(offset);
  }
  // Keeps `n` tokens: the first ones (kRight cuts the end) or the last ones (kLeft cuts the
  // start, transformers' truncation_side "left").
  void truncate(std::size_t n, TruncationSide side = TruncationSide::kRight) {
    if (n >= ids.size()) return;
    if (side == TruncationSide::kLeft) {
      const auto cut = static_cast<std::ptrdiff_t>(ids.size() - n);
      ids.erase(ids.begin(), ids.begin() + cut);
      tokens.erase(tokens.begin(), tokens.begin() + cut);
      offsets.erase(offsets.begin(), offsets.begin() + cut);
      return;
    }
    ids.resize(n);
    tokens.resize(n);
    offsets.resize(n);
  }
};

inline std::uint64_t hash_bytes(std::string_view s) {
  constexpr std::uint64_t kMul = 0xbf58476d1ce4e5b9ull;
  std::uint64_t h = 0x9E3779B97F4A7C15ull ^ (s.size() * 0x94d049bb133111ebull);
  const char* p = s.data();
  std::size_t n = s.size();
  while (n >= 8) {
    std::uint64_t w;
    std::memcpy(&w, p, 8);
    h = (h ^ w) * kMul;
    h ^= h >> 31;
    p += 8;
    n -= 8;
  }
  if (n > 0) {
    std::uint64_t w = 0;
    std::memcpy(&w, p, n);
    h = (h ^ w) * kMul;
    h ^= h >> 31;
  }
  h ^= h >> 29;
  h *= 0x94d049bb133111ebull;
  h ^= h >> 32;
  return h;
}

// Open-addressing map from strings to ids. Keys are copied into one arena.
class StringIdMap {
 public:
  // Returns false (and changes nothing) when `key` is already present.
  bool insert(std::string_view key, TokenId id);
  std::optional<TokenId> find(std::string_view key) const {
    if (slots_.empty()) return std::nullopt;
    std::uint64_t h = hash_bytes(key);
    std::size_t mask = slots_.size() - 1;
    auto tag = static_cast<std::uint32_t>(h >> 32);
    for (std::size_t i = h & mask;; i = (i + 1) & mask) {
      const Slot& s = slots_[i];
      if (s.id < 0) return std::nullopt;
      if (s.tag == tag && s.len == key.size() &&
          std::memcmp(arena_.data() + s.offset, key.data(), key.size()) == 0) {
        return s.id;
      }
    }
  }
  std::size_t size() const { return count_; }
  // Longest key in bytes.
  std::size_t max_key_length() const { return max_len_; }

 private:
  struct Slot {
    std::uint32_t offset = 0;
    std::uint32_t len = 0;
    std::uint32_t tag = 0;
    TokenId id = -1;
  };
  void grow();
  std::vector<Slot> slots_;
  std::string arena_;
  std::size_t count_ = 0;
  std::size_t max_len_ = 0;
};

}  // namespace xlt::text
