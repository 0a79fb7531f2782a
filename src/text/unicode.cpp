// Unicode helpers for the tokenizers (see unicode.h). Character data comes from utf8proc; the
// NFC "inert" table is derived from it once, on first use.
#include "text/unicode.h"

#include <utf8proc.h>

#include <algorithm>
#include <cstdlib>
#include <mutex>

namespace xlt::text::uni {
namespace {

constexpr char32_t kMaxCodePoint = 0x10FFFF;

// Bit tables over all code points, built once from utf8proc's data.
struct NfcTables {
  std::vector<std::uint64_t> inert;   // is_nfc_inert
  std::vector<std::uint64_t> second;  // may be a non-first part of a canonical decomposition

  static bool get(const std::vector<std::uint64_t>& t, char32_t c) {
    return (t[c >> 6] >> (c & 63)) & 1u;
  }
  static void set(std::vector<std::uint64_t>& t, char32_t c) { t[c >> 6] |= 1ull << (c & 63); }

  NfcTables() : inert((kMaxCodePoint + 64) / 64, 0), second((kMaxCodePoint + 64) / 64, 0) {
    utf8proc_int32_t buf[8];
    // Canonical decompositions only exist below U+30000 (the CJK compatibility supplement ends
    // at U+2FA1F), so characters above need no decomposition check.
    constexpr char32_t kDecompLimit = 0x30000;
    std::vector<char32_t> decomposable;
    for (char32_t c = 0; c < kDecompLimit; ++c) {
      if (c >= 0xD800 && c <= 0xDFFF) continue;
      int bound = 0;
      auto n = utf8proc_decompose_char(static_cast<utf8proc_int32_t>(c), buf, 8, UTF8PROC_DECOMPOSE,
                                       &bound);
      if (n == 1 && buf[0] == static_cast<utf8proc_int32_t>(c)) continue;
      decomposable.push_back(c);
      for (utf8proc_ssize_t k = 1; k < n && k < 8; ++k) set(second, static_cast<char32_t>(buf[k]));
    }
    for (char32_t c = 0; c <= kMaxCodePoint; ++c) {
      if (c >= 0xD800 && c <= 0xDFFF) continue;
      if (utf8proc_get_property(static_cast<utf8proc_int32_t>(c))->combining_class != 0) continue;
      if (get(second, c)) continue;
      set(inert, c);
    }
    // A decomposable character is inert only if NFC maps it back to itself (not for
    // singletons such as U+212B or composition exclusions such as U+0958).
    for (char32_t c : decomposable) {
      if (!get(inert, c)) continue;
      std::string s;
      append_utf8(s, c);
      if (nfc_string(s) != s) inert[c >> 6] &= ~(1ull << (c & 63));
    }
  }
};

const NfcTables& nfc_tables() {
  static const NfcTables tables;
  return tables;
}

const utf8proc_property_t* prop(char32_t c) {
  return utf8proc_get_property(static_cast<utf8proc_int32_t>(c));
}

// Python's _PyUnicode_IsCased / _PyUnicode_IsCaseIgnorable, for the final-sigma rule. utf8proc
// has no Word_Break property, so the MidLetter/MidNumLet/Single_Quote characters are listed.
bool is_cased(char32_t c) {
  int cat = category(c);
  if (cat == UTF8PROC_CATEGORY_LU || cat == UTF8PROC_CATEGORY_LL || cat == UTF8PROC_CATEGORY_LT) {
    return true;
  }
  return utf8proc_tolower(static_cast<utf8proc_int32_t>(c)) != static_cast<utf8proc_int32_t>(c) ||
         utf8proc_toupper(static_cast<utf8proc_int32_t>(c)) != static_cast<utf8proc_int32_t>(c);
}

bool is_case_ignorable(char32_t c) {
  switch (c) {
    case 0x27:
    case 0x2E:
    case 0x3A:
    case 0xB7:
    case 0x387:
    case 0x55F:
    case 0x5F4:
    case 0x2018:
    case 0x2019:
    case 0x2024:
    case 0x2027:
    case 0xFE13:
    case 0xFE52:
    case 0xFE55:
    case 0xFF07:
    case 0xFF0E:
    case 0xFF1A:
      return true;
    default:
      break;
  }
  int cat = category(c);
  return cat == UTF8PROC_CATEGORY_MN || cat == UTF8PROC_CATEGORY_ME ||
         cat == UTF8PROC_CATEGORY_CF || cat == UTF8PROC_CATEGORY_LM || cat == UTF8PROC_CATEGORY_SK;
}

Offset span(const AlignedChars& v, std::size_t b, std::size_t e) {
  Offset o{v[b].source.begin, v[b].source.end};
  for (std::size_t i = b + 1; i < e; ++i) {
    o.begin = std::min(o.begin, v[i].source.begin);
    o.end = std::max(o.end, v[i].source.end);
  }
  return o;
}

// Sorts each run of non-starters by combining class (stable), as canonical ordering requires.
void canonical_order(AlignedChars& v, std::size_t from) {
  std::size_t i = from;
  while (i < v.size()) {
    if (combining_class(v[i].cp) == 0) {
      ++i;
      continue;
    }
    std::size_t j = i;
    while (j < v.size() && combining_class(v[j].cp) != 0) ++j;
    std::stable_sort(v.begin() + static_cast<std::ptrdiff_t>(i),
                     v.begin() + static_cast<std::ptrdiff_t>(j),
                     [](const AlignedChar& a, const AlignedChar& b) {
                       return combining_class(a.cp) < combining_class(b.cp);
                     });
    i = j;
  }
}

}  // namespace

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

std::string to_utf8(const std::u32string& cps) {
  std::string s;
  s.reserve(cps.size());
  for (char32_t c : cps) append_utf8(s, c);
  return s;
}

std::u32string decode_all(std::string_view s) {
  std::u32string out;
  for (std::size_t i = 0; i < s.size();) {
    Decoded d = decode(s, i);
    if (d.len == 0) {
      out.push_back(0xFFFD);
      ++i;
      continue;
    }
    out.push_back(d.cp);
    i += d.len;
  }
  return out;
}

std::size_t find_invalid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    // Skip ASCII eight bytes at a time: most text is mostly ASCII.
    while (i + 8 <= s.size()) {
      std::uint64_t w;
      std::copy_n(s.data() + i, 8, reinterpret_cast<char*>(&w));
      if (w & 0x8080808080808080ull) break;
      i += 8;
    }
    if (i >= s.size()) break;
    Decoded d = decode(s, i);
    if (d.len == 0) return i;
    i += d.len;
  }
  return std::string_view::npos;
}

RepairedText repair_utf8(std::string_view s) {
  RepairedText r;
  r.text.reserve(s.size() + 8);
  std::size_t run_start = 0;
  auto flush_run = [&](std::size_t end) {
    if (end > run_start) {
      r.pieces.push_back({r.text.size(), run_start, end, false});
      r.text.append(s.substr(run_start, end - run_start));
    }
  };
  std::size_t i = 0;
  while (i < s.size()) {
    Decoded d = decode(s, i);
    if (d.len != 0) {
      i += d.len;
      continue;
    }
    flush_run(i);
    // The maximal subpart: the longest prefix of a well-formed sequence (Unicode 3.9, as
    // CPython's decoder does): one replacement for it, or for a lone bad byte.
    std::size_t j = i + 1;
    const auto c0 = static_cast<unsigned char>(s[i]);
    std::size_t need = c0 >= 0xF0 && c0 <= 0xF4   ? 4
                       : c0 >= 0xE0 && c0 <= 0xEF ? 3
                       : c0 >= 0xC2 && c0 <= 0xDF ? 2
                                                  : 1;
    for (std::size_t k = 1; k < need && j < s.size(); ++k, ++j) {
      const auto b = static_cast<unsigned char>(s[j]);
      unsigned lo = 0x80, hi = 0xBF;
      if (k == 1) {
        if (c0 == 0xE0) lo = 0xA0;
        if (c0 == 0xED) hi = 0x9F;
        if (c0 == 0xF0) lo = 0x90;
        if (c0 == 0xF4) hi = 0x8F;
      }
      if (b < lo || b > hi) break;
    }
    r.pieces.push_back({r.text.size(), i, j, true});
    append_utf8(r.text, 0xFFFD);
    i = j;
    run_start = j;
  }
  flush_run(s.size());
  return r;
}

std::size_t RepairedText::to_original(std::size_t repaired, bool is_end) const {
  if (pieces.empty()) return repaired;
  // The last piece that starts at or before `repaired` (for an end, strictly before).
  auto it =
      std::upper_bound(pieces.begin(), pieces.end(), repaired, [&](std::size_t v, const Piece& p) {
        return is_end ? v <= p.repaired_begin : v < p.repaired_begin;
      });
  if (it == pieces.begin()) return is_end ? pieces.front().original_begin : 0;
  const Piece& p = *(it - 1);
  if (p.replaced) return is_end ? p.original_end : p.original_begin;
  return p.original_begin + (repaired - p.repaired_begin);
}

int category(char32_t c) {
  return utf8proc_category(static_cast<utf8proc_int32_t>(c));
}

bool is_category_mn(char32_t c) {
  return category(c) == UTF8PROC_CATEGORY_MN;
}

bool is_bert_whitespace(char32_t c) {
  if (c == ' ' || c == '\t' || c == '\n' || c == '\r') return true;
  return c >= 0x80 && category(c) == UTF8PROC_CATEGORY_ZS;
}

bool is_bert_control(char32_t c) {
  if (c == '\t' || c == '\n' || c == '\r') return false;
  if (c < 0x80) return c < 0x20 || c == 0x7F;
  int cat = category(c);
  return cat == UTF8PROC_CATEGORY_CN || cat >= UTF8PROC_CATEGORY_CC;
}

bool is_bert_punctuation(char32_t c) {
  if ((c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) ||
      (c >= 123 && c <= 126)) {
    return true;
  }
  if (c < 0x80) return false;
  int cat = category(c);
  return cat >= UTF8PROC_CATEGORY_PC && cat <= UTF8PROC_CATEGORY_PO;
}

bool is_cjk_ideograph(char32_t c, bool rust) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
         (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2B73F) ||
         (c >= 0x2B740 && c <= 0x2B81F) || (c >= (rust ? 0x2B920 : 0x2B820) && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

bool is_python_space(char32_t c) {
  if (c < 0x80) return c == ' ' || (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x1F);
  const auto* p = prop(c);
  return p->category == UTF8PROC_CATEGORY_ZS || p->bidi_class == UTF8PROC_BIDI_CLASS_WS ||
         p->bidi_class == UTF8PROC_BIDI_CLASS_B || p->bidi_class == UTF8PROC_BIDI_CLASS_S;
}

bool is_white_space(char32_t c) {
  // White_Space is Python's isspace() set minus the information separators U+001C..U+001F.
  if (c >= 0x1C && c <= 0x1F) return false;
  return is_python_space(c);
}

int combining_class(char32_t c) {
  return prop(c)->combining_class;
}

bool is_nfc_inert(char32_t c) {
  if (c < 0x80) return true;
  if (c > kMaxCodePoint) return false;
  return NfcTables::get(nfc_tables().inert, c);
}

bool starts_nfc_segment(char32_t c) {
  if (c < 0x80) return true;
  return combining_class(c) == 0 && !NfcTables::get(nfc_tables().second, c);
}

std::string nfc_string(std::string_view s) {
  utf8proc_uint8_t* out = nullptr;
  auto n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(s.data()),
                        static_cast<utf8proc_ssize_t>(s.size()), &out,
                        static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
  if (n < 0) return std::string(s);  // only for invalid UTF-8, which callers rule out
  std::string r(reinterpret_cast<const char*>(out), static_cast<std::size_t>(n));
  std::free(out);
  return r;
}

std::string nfkc_string(std::string_view s) {
  utf8proc_uint8_t* out = nullptr;
  auto n = utf8proc_map(
      reinterpret_cast<const utf8proc_uint8_t*>(s.data()), static_cast<utf8proc_ssize_t>(s.size()),
      &out, static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT));
  if (n < 0) return std::string(s);
  std::string r(reinterpret_cast<const char*>(out), static_cast<std::size_t>(n));
  std::free(out);
  return r;
}

void nfc(const AlignedChars& in, AlignedChars& out) {
  out.clear();
  std::size_t i = 0;
  while (i < in.size()) {
    std::size_t j = i + 1;
    while (j < in.size() && !starts_nfc_segment(in[j].cp)) ++j;
    bool inert = j == i + 1 && is_nfc_inert(in[i].cp);
    if (inert) {
      out.push_back(in[i]);
    } else {
      std::string seg;
      for (std::size_t k = i; k < j; ++k) append_utf8(seg, in[k].cp);
      std::string normalized = nfc_string(seg);
      if (normalized == seg) {
        out.insert(out.end(), in.begin() + static_cast<std::ptrdiff_t>(i),
                   in.begin() + static_cast<std::ptrdiff_t>(j));
      } else {
        Offset src = span(in, i, j);
        for (char32_t c : decode_all(normalized)) out.push_back({c, src});
      }
    }
    i = j;
  }
}

void nfd(const AlignedChars& in, AlignedChars& out) {
  out.clear();
  utf8proc_int32_t buf[32];
  for (const AlignedChar& ch : in) {
    if (ch.cp < 0x80) {
      out.push_back(ch);
      continue;
    }
    int bound = 0;
    auto n = utf8proc_decompose_char(static_cast<utf8proc_int32_t>(ch.cp), buf, 32,
                                     UTF8PROC_DECOMPOSE, &bound);
    for (utf8proc_ssize_t k = 0; k < n && k < 32; ++k) {
      out.push_back({static_cast<char32_t>(buf[k]), ch.source});
    }
  }
  canonical_order(out, 0);
}

void lower_python(const AlignedChars& in, AlignedChars& out) {
  out.clear();
  for (std::size_t i = 0; i < in.size(); ++i) {
    const AlignedChar& ch = in[i];
    if (ch.cp < 0x80) {
      char32_t c = ch.cp >= 'A' && ch.cp <= 'Z' ? ch.cp + 32 : ch.cp;
      out.push_back({c, ch.source});
    } else if (ch.cp == 0x130) {
      out.push_back({'i', ch.source});
      out.push_back({0x307, ch.source});
    } else if (ch.cp == 0x3A3) {
      // Final sigma: preceded by a cased letter and not followed by one (case-ignorable
      // characters skipped on both sides).
      bool before = false, after = false;
      for (std::size_t k = i; k-- > 0;) {
        if (is_case_ignorable(in[k].cp)) continue;
        before = is_cased(in[k].cp);
        break;
      }
      for (std::size_t k = i + 1; k < in.size(); ++k) {
        if (is_case_ignorable(in[k].cp)) continue;
        after = is_cased(in[k].cp);
        break;
      }
      out.push_back({before && !after ? char32_t{0x3C2} : char32_t{0x3C3}, ch.source});
    } else {
      out.push_back({static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(ch.cp))),
                     ch.source});
    }
  }
}

void lower_per_char(const AlignedChars& in, AlignedChars& out) {
  out.clear();
  for (const AlignedChar& ch : in) {
    if (ch.cp == 0x130) {
      out.push_back({'i', ch.source});
      out.push_back({0x307, ch.source});
    } else {
      out.push_back({static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(ch.cp))),
                     ch.source});
    }
  }
}

void strip_accents(const AlignedChars& in, AlignedChars& out) {
  AlignedChars decomposed;
  nfd(in, decomposed);
  out.clear();
  for (const AlignedChar& ch : decomposed) {
    if (!is_category_mn(ch.cp)) out.push_back(ch);
  }
}

}  // namespace xlt::text::uni
