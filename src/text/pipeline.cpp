// Shared tokenizer pipeline (see pipeline.h): added tokens, model, template, truncation, padding
// and decoding with Hugging Face's semantics for the slow (Python) and fast (Rust) backends.
#include "text/pipeline.h"

#include <algorithm>
#include <cstdio>

#include "text/unicode.h"
#include "xlt/core/error.h"

namespace xlt::text {
namespace {

void replace_all(std::string& s, std::string_view from, std::string_view to) {
  std::size_t pos = 0;
  while ((pos = s.find(from, pos)) != std::string::npos) {
    s.replace(pos, from.size(), to);
    pos += to.size();
  }
}

// Python's slow longest_first / only_first / only_second (tokenization_utils_base.py).
std::size_t truncate_python(Pieces& a, Pieces* b, std::size_t to_remove,
                            TruncationStrategy strategy, TruncationSide side) {
  if (strategy == TruncationStrategy::kOnlyFirst ||
      (strategy == TruncationStrategy::kLongestFirst && !b)) {
    if (a.size() <= to_remove) return 0;  // HF logs an error and leaves the input alone
    a.truncate(a.size() - to_remove, side);
    return to_remove;
  }
  if (strategy == TruncationStrategy::kOnlySecond) {
    if (!b || b->size() <= to_remove) return 0;
    b->truncate(b->size() - to_remove, side);
    return to_remove;
  }
  // longest_first on a pair: one token at a time from the longer one, the second on ties.
  std::size_t na = a.size(), nb = b->size();
  for (std::size_t k = 0; k < to_remove; ++k) {
    if (na > nb) {
      if (na > 0) --na;
    } else if (nb > 0) {
      --nb;
    }
  }
  std::size_t removed = (a.size() - na) + (b->size() - nb);
  a.truncate(na, side);
  b->truncate(nb, side);
  return removed;
}

// The Rust tokenizers' truncate_encodings (utils/truncation.rs).
std::size_t truncate_rust(Pieces& a, Pieces* b, std::size_t max_length, TruncationStrategy strategy,
                          TruncationSide side) {
  const std::size_t before = a.size() + (b ? b->size() : 0);
  if (before <= max_length) return 0;
  const std::size_t to_remove = before - max_length;
  if (strategy == TruncationStrategy::kLongestFirst) {
    if (!b) {
      a.truncate(max_length, side);
    } else {
      std::size_t n1 = a.size(), n2 = b->size();
      const bool swap = n1 > n2;
      if (swap) std::swap(n1, n2);
      n2 = n1 > max_length ? n1 : std::max(n1, max_length - n1);
      if (n1 + n2 > max_length) {
        n1 = max_length / 2;
        n2 = n1 + max_length % 2;
      }
      if (swap) std::swap(n1, n2);
      a.truncate(n1, side);
      b->truncate(n2, side);
    }
  } else {
    // Rust's errors (the Python tokenizer logs and returns the sequence too long instead): an
    // encoding longer than max_length would be silently wrong downstream.
    Pieces* target = strategy == TruncationStrategy::kOnlyFirst ? &a : b;
    if (!target) {
      throw TokenizerError(
          "truncation only_second: second sequence not provided (tokenizers' "
          "SecondSequenceNotProvided)");
    }
    if (target->size() <= to_remove) {
      throw TokenizerError(
          std::string("truncation ") +
          (strategy == TruncationStrategy::kOnlyFirst ? "only_first" : "only_second") + ": the " +
          (strategy == TruncationStrategy::kOnlyFirst ? "first" : "second") + " sequence has " +
          std::to_string(target->size()) + " tokens, too few to remove the " +
          std::to_string(to_remove) + " needed for max_length (tokenizers' SequenceTooShort)");
    }
    target->truncate(target->size() - to_remove, side);
  }
  return before - (a.size() + (b ? b->size() : 0));
}

}  // namespace

std::size_t truncate_pieces(Pieces& a, Pieces* b, std::size_t max_length, std::size_t num_special,
                            TruncationStrategy strategy, Backend backend, TruncationSide side) {
  if (strategy == TruncationStrategy::kNone) return 0;
  const std::size_t total = a.size() + (b ? b->size() : 0) + num_special;
  if (total <= max_length) return 0;
  if (backend == Backend::kFast) {
    if (max_length < num_special) return 0;
    return truncate_rust(a, b, max_length - num_special, strategy, side);
  }
  return truncate_python(a, b, total - max_length, strategy, side);
}

std::string_view python_strip(std::string_view s) {
  std::size_t b = 0, e = s.size();
  while (b < e) {
    uni::Decoded d = uni::decode(s, b);
    if (d.len == 0 || !uni::is_python_space(d.cp)) break;
    b += d.len;
  }
  while (e > b) {
    std::size_t p = e - 1;
    while (p > b && (static_cast<unsigned char>(s[p]) & 0xC0) == 0x80) --p;
    uni::Decoded d = uni::decode(s, p);
    if (d.len == 0 || !uni::is_python_space(d.cp)) break;
    e = p;
  }
  return s.substr(b, e - b);
}

std::string clean_up_tokenization(std::string s) {
  static const std::pair<std::string_view, std::string_view> kRules[] = {
      {" .", "."},     {" ?", "?"},   {" !", "!"},   {" ,", ","},     {" ' ", "'"},
      {" n't", "n't"}, {" 'm", "'m"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}};
  for (const auto& [from, to] : kRules) replace_all(s, from, to);
  return s;
}

std::size_t checked_pad_length(std::size_t length) {
  // Without max_length and without a model_max_length in the configuration, "pad to max_length"
  // has no sensible target.
  constexpr std::size_t kLimit = std::size_t{1} << 24;
  if (length > kLimit) {
    throw TokenizerError(
        "padding to max_length needs a max_length: this tokenizer has no model_max_length");
  }
  return length;
}

void pad_encoding(Encoding& e, std::size_t length, const SpecialToken& pad, PaddingSide side) {
  if (e.size() >= length) return;
  if (!pad.present()) {
    throw TokenizerError("padding was requested but the tokenizer has no pad token");
  }
  const std::size_t n = length - e.size();
  auto grow = [&](auto& v, auto value) {
    if (side == PaddingSide::kRight) {
      v.insert(v.end(), n, value);
    } else {
      v.insert(v.begin(), n, value);
    }
  };
  grow(e.ids, pad.id);
  grow(e.tokens, pad.content);
  grow(e.token_type_ids, std::int32_t{0});
  grow(e.attention_mask, std::int32_t{0});
  grow(e.special_tokens_mask, std::int32_t{1});
  grow(e.offsets, Offset{});
  grow(e.sequence_ids, std::int32_t{-1});
}

void PipelineTokenizer::finish_setup() {
  all_special_ids.clear();
  for (const SpecialToken* t : {&special_.bos, &special_.eos, &special_.unk, &special_.sep,
                                &special_.pad, &special_.cls, &special_.mask}) {
    if (t->present()) all_special_ids.insert(t->id);
  }
  for (const SpecialToken& t : special_.additional) {
    if (t.present()) all_special_ids.insert(t.id);
  }
}

void PipelineTokenizer::tokenize_valid(std::string_view text, Pieces& out) const {
  if (added.empty()) {
    tokenize_plain(text, 0, out);
    return;
  }
  thread_local std::vector<AddedVocabulary::Segment> segments;
  added.split(text, segments);
  for (const auto& s : segments) {
    if (s.token) {
      out.push(s.token->id, s.token->content, {s.begin, s.end});
    } else {
      tokenize_plain(text.substr(s.begin, s.end - s.begin), s.begin, out);
    }
  }
}

void PipelineTokenizer::tokenize_to(std::string_view text, bool replace_invalid,
                                    Pieces& out) const {
  out.clear();
  const std::size_t bad = uni::find_invalid_utf8(text);
  if (bad == std::string_view::npos) {
    tokenize_valid(text, out);
    return;
  }
  if (!replace_invalid) {
    char byte[8];
    std::snprintf(byte, sizeof byte, "0x%02X", static_cast<unsigned char>(text[bad]));
    throw TokenizerError("invalid UTF-8 in input text at byte offset " + std::to_string(bad) +
                         " (byte " + byte +
                         "); fix the encoding or ask for replacement with U+FFFD (xlt tokenize "
                         "--replace-invalid, EncodeOptions::replace_invalid_utf8)");
  }
  uni::RepairedText repaired = uni::repair_utf8(text);
  tokenize_valid(repaired.text, out);
  for (Offset& o : out.offsets) {
    o.begin = repaired.to_original(o.begin, false);
    o.end = repaired.to_original(o.end, true);
  }
}

std::vector<std::string> PipelineTokenizer::tokenize(std::string_view text) const {
  Pieces p;
  tokenize_to(text, false, p);
  return std::move(p.tokens);
}

std::size_t PipelineTokenizer::num_special_tokens_to_add(bool pair) const {
  const auto& t = pair ? pair_template : single_template;
  return static_cast<std::size_t>(
      std::count_if(t.begin(), t.end(), [](const TemplatePiece& p) { return !p.is_sequence; }));
}

Encoding PipelineTokenizer::encode(std::string_view text, const EncodeOptions& options) const {
  Pieces a;
  tokenize_to(text, options.replace_invalid_utf8, a);
  return post_process(a, nullptr, options);
}

Encoding PipelineTokenizer::encode_pair(std::string_view text, std::string_view text_pair,
                                        const EncodeOptions& options) const {
  Pieces a, b;
  tokenize_to(text, options.replace_invalid_utf8, a);
  tokenize_to(text_pair, options.replace_invalid_utf8, b);
  return post_process(a, &b, options);
}

Encoding PipelineTokenizer::post_process(Pieces& a, Pieces* b, const EncodeOptions& options) const {
  const bool pair = b != nullptr;
  const std::size_t max_length = options.max_length ? options.max_length : info_.model_max_length;
  Encoding e;
  const std::size_t num_special = options.add_special_tokens ? num_special_tokens_to_add(pair) : 0;
  e.num_truncated = truncate_pieces(a, b, max_length, num_special, options.truncation,
                                    info_.backend, info_.truncation_side);
  const std::size_t n = a.size() + (pair ? b->size() : 0) + num_special;
  e.ids.reserve(n);
  e.tokens.reserve(n);
  e.token_type_ids.reserve(n);
  e.special_tokens_mask.reserve(n);
  e.offsets.reserve(n);
  e.sequence_ids.reserve(n);
  auto append_sequence = [&](Pieces& p, int seq, std::int32_t type_id) {
    e.ids.insert(e.ids.end(), p.ids.begin(), p.ids.end());
    std::move(p.tokens.begin(), p.tokens.end(), std::back_inserter(e.tokens));
    e.offsets.insert(e.offsets.end(), p.offsets.begin(), p.offsets.end());
    e.token_type_ids.insert(e.token_type_ids.end(), p.size(), type_id);
    e.special_tokens_mask.insert(e.special_tokens_mask.end(), p.size(), 0);
    e.sequence_ids.insert(e.sequence_ids.end(), p.size(), seq);
  };
  if (options.add_special_tokens) {
    for (const TemplatePiece& t : pair ? pair_template : single_template) {
      if (t.is_sequence) {
        append_sequence(t.sequence == 0 ? a : *b, t.sequence, t.type_id);
      } else {
        e.ids.push_back(t.id);
        e.tokens.push_back(t.token);
        e.token_type_ids.push_back(t.type_id);
        e.special_tokens_mask.push_back(1);
        e.offsets.push_back({});
        e.sequence_ids.push_back(-1);
      }
    }
  } else {
    append_sequence(a, 0, 0);
    // The Rust pipeline gives the second sequence type 1 even without the template.
    if (pair) append_sequence(*b, 1, info_.backend == Backend::kFast ? 1 : 0);
  }
  e.attention_mask.assign(e.ids.size(), 1);

  std::size_t target = 0;
  if (options.padding == PaddingStrategy::kMaxLength) target = checked_pad_length(max_length);
  if (options.padding == PaddingStrategy::kLongest) target = e.size();
  if (options.padding != PaddingStrategy::kNone && options.pad_to_multiple_of > 0) {
    const std::size_t m = options.pad_to_multiple_of;
    target = (target + m - 1) / m * m;
  }
  if (target > e.size()) pad_encoding(e, target, special_.pad, info_.padding_side);
  return e;
}

std::optional<TokenId> PipelineTokenizer::token_to_id(std::string_view token) const {
  if (const AddedToken* t = added.find(token)) return t->id;
  return model_token_to_id(token);
}

std::string PipelineTokenizer::id_to_token(TokenId id) const {
  if (const AddedToken* t = added.find_id(id)) return t->content;
  if (id >= 0 && static_cast<std::size_t>(id) < vocab_size_) {
    if (auto t = model_id_to_token(id)) return *t;
  }
  throw TokenizerError("token id " + std::to_string(id) + " is outside the vocabulary (size " +
                       std::to_string(vocab_size_) + ")");
}

std::string PipelineTokenizer::fast_decode(const std::vector<std::string>& tokens) const {
  std::string s;
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    if (i) s += ' ';
    s += tokens[i];
  }
  return s;
}

std::string PipelineTokenizer::decode(const std::vector<TokenId>& ids,
                                      const DecodeOptions& options) const {
  const bool cleanup = options.clean_up_tokenization_spaces.value_or(clean_up_tokenization_spaces);
  if (info_.backend == Backend::kFast) {
    std::vector<std::string> tokens;
    tokens.reserve(ids.size());
    for (TokenId id : ids) {
      const AddedToken* added_token = added.find_id(id);
      if (options.skip_special_tokens && added_token && added_token->special) continue;
      tokens.push_back(id_to_token(id));
    }
    std::string text = fast_decode(tokens);
    return cleanup ? clean_up_tokenization(std::move(text)) : text;
  }
  // transformers' PreTrainedTokenizer._decode.
  std::vector<std::string> sub_texts, current;
  for (TokenId id : ids) {
    if (options.skip_special_tokens && all_special_ids.count(id)) continue;
    std::string token = id_to_token(id);
    if (legacy_added_tokens.count(token)) {
      if (!current.empty()) {
        std::string s = convert_tokens_to_string(current);
        if (!s.empty()) sub_texts.push_back(std::move(s));
        current.clear();
      }
      sub_texts.push_back(std::move(token));
    } else {
      current.push_back(std::move(token));
    }
  }
  if (!current.empty()) sub_texts.push_back(convert_tokens_to_string(current));
  std::string text;
  for (std::size_t i = 0; i < sub_texts.size(); ++i) {
    if (i && options.spaces_between_special_tokens) text += ' ';
    text += sub_texts[i];
  }
  return cleanup ? clean_up_tokenization(std::move(text)) : text;
}

}  // namespace xlt::text
