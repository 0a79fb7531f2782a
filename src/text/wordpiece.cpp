// WordPiece model (see wordpiece.h) and the string-to-id hash map it uses.
#include "text/wordpiece.h"

#include "xlt/core/error.h"

namespace xlt::text {

bool StringIdMap::insert(std::string_view key, TokenId id) {
  if (find(key)) return false;
  if ((count_ + 1) * 2 > slots_.size()) grow();
  std::uint64_t h = hash_bytes(key);
  std::size_t mask = slots_.size() - 1;
  std::size_t i = h & mask;
  while (slots_[i].id >= 0) i = (i + 1) & mask;
  slots_[i] = {static_cast<std::uint32_t>(arena_.size()), static_cast<std::uint32_t>(key.size()),
               static_cast<std::uint32_t>(h >> 32), id};
  arena_.append(key);
  ++count_;
  if (key.size() > max_len_) max_len_ = key.size();
  return true;
}

void StringIdMap::grow() {
  std::vector<Slot> old = std::move(slots_);
  slots_.assign(old.empty() ? 64 : old.size() * 2, Slot{});
  std::size_t mask = slots_.size() - 1;
  for (const Slot& s : old) {
    if (s.id < 0) continue;
    std::uint64_t h = hash_bytes(std::string_view(arena_.data() + s.offset, s.len));
    std::size_t i = h & mask;
    while (slots_[i].id >= 0) i = (i + 1) & mask;
    slots_[i] = s;
  }
}

WordPiece::WordPiece(std::vector<std::string> vocab, std::string unk_token, std::string prefix,
                     std::size_t max_input_chars_per_word, const std::string& source)
    : tokens_(std::move(vocab)),
      unk_token_(std::move(unk_token)),
      prefix_(std::move(prefix)),
      max_chars_(max_input_chars_per_word) {
  for (std::size_t i = 0; i < tokens_.size(); ++i) {
    const std::string& t = tokens_[i];
    if (!vocab_.insert(t, static_cast<TokenId>(i))) {
      throw TokenizerError(source + ": token '" + t + "' appears twice (ids " +
                           std::to_string(*vocab_.find(t)) + " and " + std::to_string(i) +
                           "); a vocabulary must list each token once");
    }
    if (!prefix_.empty() && t.size() >= prefix_.size() &&
        t.compare(0, prefix_.size(), prefix_) == 0) {
      continuation_.insert(std::string_view(t).substr(prefix_.size()), static_cast<TokenId>(i));
    }
  }
  auto unk = vocab_.find(unk_token_);
  if (!unk) {
    throw TokenizerError(source + ": the unknown token '" + unk_token_ +
                         "' is not in the vocabulary");
  }
  unk_id_ = *unk;
}

namespace {

Offset source_range(const Offset* align, std::size_t origin, std::size_t b, std::size_t e) {
  if (!align) return {origin + b, origin + e};
  Offset o{align[b].begin, align[e - 1].end};
  // Normalisation can reorder (canonical ordering), so take the hull.
  for (std::size_t i = b; i < e; ++i) {
    if (align[i].begin < o.begin) o.begin = align[i].begin;
    if (align[i].end > o.end) o.end = align[i].end;
  }
  return o;
}

inline bool is_continuation_byte(char c) {
  return (static_cast<unsigned char>(c) & 0xC0) == 0x80;
}

}  // namespace

void WordPiece::tokenize_word(std::string_view word, const Offset* align, std::size_t origin,
                              Pieces& out) const {
  if (word.empty()) return;
  std::size_t chars = 0;
  for (char c : word) chars += !is_continuation_byte(c);
  if (chars > max_chars_) {
    out.push(unk_id_, unk_token_, source_range(align, origin, 0, word.size()));
    return;
  }
  const std::size_t first = out.size();
  const std::size_t max_head = vocab_.max_key_length();
  const std::size_t max_cont = continuation_.max_key_length();
  std::size_t start = 0;
  while (start < word.size()) {
    const bool head = start == 0 || prefix_.empty();
    const StringIdMap& map = head ? vocab_ : continuation_;
    std::size_t limit = start + (head ? max_head : max_cont);
    std::size_t end = std::min(word.size(), limit);
    while (end < word.size() && is_continuation_byte(word[end])) --end;  // char boundary
    std::optional<TokenId> id;
    while (end > start) {
      id = map.find(word.substr(start, end - start));
      if (id) break;
      do --end;
      while (end > start && is_continuation_byte(word[end]));
    }
    if (!id) {
      // Any unmatched remainder turns the whole word into one [UNK].
      out.truncate(first);
      out.push(unk_id_, unk_token_, source_range(align, origin, 0, word.size()));
      return;
    }
    out.push(*id, tokens_[static_cast<std::size_t>(*id)], source_range(align, origin, start, end));
    start = end;
  }
}

}  // namespace xlt::text
