// Unicode helpers for the tokenizers: strict UTF-8 decoding and repair, the character classes
// BERT's tokenizers use (Python's and Rust's definitions), and normalisation that keeps track of
// which original bytes each output character came from. All Unicode data comes from utf8proc.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "xlt/text/tokenizer.h"

namespace xlt::text::uni {

// One code point decoded from UTF-8. `len` is 0 when the bytes at the position are not valid
// UTF-8 (overlong forms, surrogates and values above U+10FFFF are invalid).
struct Decoded {
  char32_t cp = 0;
  std::uint32_t len = 0;
};

// Decodes the code point starting at s[i] (i < s.size()).
inline Decoded decode(std::string_view s, std::size_t i) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data()) + i;
  const std::size_t left = s.size() - i;
  const unsigned c0 = p[0];
  if (c0 < 0x80) return {c0, 1};
  if (c0 < 0xC2) return {};
  if (c0 < 0xE0) {
    if (left < 2 || (p[1] & 0xC0) != 0x80) return {};
    return {static_cast<char32_t>(((c0 & 0x1F) << 6) | (p[1] & 0x3F)), 2};
  }
  if (c0 < 0xF0) {
    if (left < 3) return {};
    const unsigned lo = c0 == 0xE0 ? 0xA0 : 0x80, hi = c0 == 0xED ? 0x9F : 0xBF;
    if (p[1] < lo || p[1] > hi || (p[2] & 0xC0) != 0x80) return {};
    return {static_cast<char32_t>(((c0 & 0x0F) << 12) | ((p[1] & 0x3F) << 6) | (p[2] & 0x3F)), 3};
  }
  if (c0 < 0xF5) {
    if (left < 4) return {};
    const unsigned lo = c0 == 0xF0 ? 0x90 : 0x80, hi = c0 == 0xF4 ? 0x8F : 0xBF;
    if (p[1] < lo || p[1] > hi || (p[2] & 0xC0) != 0x80 || (p[3] & 0xC0) != 0x80) return {};
    return {static_cast<char32_t>(((c0 & 0x07) << 18) | ((p[1] & 0x3F) << 12) |
                                  ((p[2] & 0x3F) << 6) | (p[3] & 0x3F)),
            4};
  }
  return {};
}

void append_utf8(std::string& out, char32_t cp);
std::string to_utf8(const std::u32string& cps);

// Byte offset of the first invalid UTF-8 sequence, or npos when `s` is valid.
std::size_t find_invalid_utf8(std::string_view s);

// `s` with every maximal invalid subsequence replaced by U+FFFD (Python's
// bytes.decode("utf-8", errors="replace")), plus a map from repaired byte offsets back to
// original ones.
struct RepairedText {
  std::string text;
  // Pieces of `text` in order: [repaired_begin, ...) maps to [original_begin, original_end);
  // `replaced` pieces are one U+FFFD standing for the whole original range.
  struct Piece {
    std::size_t repaired_begin, original_begin, original_end;
    bool replaced;
  };
  std::vector<Piece> pieces;
  // Maps a repaired offset to an original one (a begin maps to the start of a replacement, an
  // end to its end).
  std::size_t to_original(std::size_t repaired, bool is_end) const;
};
RepairedText repair_utf8(std::string_view s);

// utf8proc general category (utf8proc_category_t).
int category(char32_t c);
bool is_category_mn(char32_t c);

// BERT's classes (transformers' tokenization_utils.py and the Rust BertNormalizer agree):
// whitespace = space, \t, \n, \r or Zs; control = any C* category except \t, \n, \r;
// punctuation = every non-alphanumeric ASCII symbol, or any P* category.
bool is_bert_whitespace(char32_t c);
bool is_bert_control(char32_t c);
bool is_bert_punctuation(char32_t c);
// The CJK ideograph blocks BERT puts spaces around. transformers' Python tokenizer has the block
// U+2B820..U+2CEAF; the Rust BertNormalizer (tokenizer.json) starts it at U+2B920 (`rust`).
bool is_cjk_ideograph(char32_t c, bool rust = false);
// Python's str.isspace() (bidirectional class WS, B or S, or category Zs): what str.split() and
// str.strip() split on.
bool is_python_space(char32_t c);
// Unicode White_Space (Rust's char::is_whitespace).
bool is_white_space(char32_t c);

// A character that NFC leaves unchanged whatever its neighbours are: canonical combining class
// 0, never the second half of a canonical composition, and its own NFC. Text made only of such
// characters is in NFC.
bool is_nfc_inert(char32_t c);
// Canonical combining class.
int combining_class(char32_t c);
// May a composition or reordering reach back across this character? (false = a safe place to
// cut text for normalisation).
bool starts_nfc_segment(char32_t c);

// A character together with the original byte range it came from.
struct AlignedChar {
  char32_t cp;
  Offset source;
};
using AlignedChars = std::vector<AlignedChar>;

// Normalisations that keep the alignment. A character that merges or splits gets the union of
// the source ranges involved.
void nfc(const AlignedChars& in, AlignedChars& out);
void nfd(const AlignedChars& in, AlignedChars& out);
// Python's str.lower(): full lowercase mapping (U+0130 -> i + U+0307) and the final-sigma rule.
void lower_python(const AlignedChars& in, AlignedChars& out);
// Rust's char::to_lowercase() per character (full mapping, no final-sigma rule).
void lower_per_char(const AlignedChars& in, AlignedChars& out);
// NFD, then drop nonspacing marks (Mn): BERT's accent stripping.
void strip_accents(const AlignedChars& in, AlignedChars& out);

// Whole-string helpers (tests and decoding).
std::string nfc_string(std::string_view s);
std::string nfkc_string(std::string_view s);
std::u32string decode_all(std::string_view valid_utf8);

}  // namespace xlt::text::uni
