// Unit tests of the Unicode helpers: strict UTF-8 decoding, repair as Python's
// errors="replace", BERT's character classes, and alignment-keeping normalisation. Expected
// values were computed with CPython 3.11 (str.lower, bytes.decode, unicodedata.category).
#include "text/unicode.h"

#include <gtest/gtest.h>

using namespace xlt::text;
using namespace xlt::text::uni;

namespace {

AlignedChars aligned(const std::string& s) {
  AlignedChars out;
  for (std::size_t i = 0; i < s.size();) {
    Decoded d = decode(s, i);
    out.push_back({d.cp, {i, i + d.len}});
    i += d.len;
  }
  return out;
}

std::string text_of(const AlignedChars& v) {
  std::string s;
  for (const auto& c : v) append_utf8(s, c.cp);
  return s;
}

TEST(Utf8, DecodesOneToFourBytes) {
  EXPECT_EQ(decode("A", 0).cp, U'A');
  EXPECT_EQ(decode("\xC3\xA9", 0).cp, U'\u00E9');
  EXPECT_EQ(decode("\xE4\xB8\xAD", 0).cp, U'\u4E2D');
  Decoded d = decode("\xF0\x9F\x98\x80", 0);
  EXPECT_EQ(d.cp, U'\U0001F600');
  EXPECT_EQ(d.len, 4u);
}

TEST(Utf8, RejectsOverlongSurrogateAndOutOfRange) {
  EXPECT_EQ(decode("\xC0\x80", 0).len, 0u);          // overlong NUL
  EXPECT_EQ(decode("\xE0\x80\x80", 0).len, 0u);      // overlong
  EXPECT_EQ(decode("\xED\xA0\x80", 0).len, 0u);      // surrogate U+D800
  EXPECT_EQ(decode("\xF4\x90\x80\x80", 0).len, 0u);  // above U+10FFFF
  EXPECT_EQ(decode("\xE2\x82", 0).len, 0u);          // truncated
  EXPECT_EQ(decode("\x80", 0).len, 0u);              // lone continuation byte
}

TEST(Utf8, FindsFirstInvalidByte) {
  EXPECT_EQ(find_invalid_utf8("plain ascii text that is long"), std::string_view::npos);
  EXPECT_EQ(find_invalid_utf8("caf\xC3\xA9 ok"), std::string_view::npos);
  EXPECT_EQ(find_invalid_utf8("abcdefghij\xFFxyz"), 10u);
  EXPECT_EQ(find_invalid_utf8(std::string("ab\xC3", 3)), 2u);
}

TEST(Utf8, RepairsLikePythonReplace) {
  // b'a\xffb' -> 'a\ufffdb'; b'\xe2\x82A' -> '\ufffdA' (one U+FFFD for the truncated
  // sequence); b'\xed\xa0\x80x' -> three U+FFFD then 'x'.
  EXPECT_EQ(repair_utf8("a\xFF"
                        "b")
                .text,
            "a\xEF\xBF\xBD"
            "b");
  EXPECT_EQ(repair_utf8("\xE2\x82"
                        "A")
                .text,
            "\xEF\xBF\xBD"
            "A");
  EXPECT_EQ(repair_utf8("\xED\xA0\x80x").text, "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBDx");
  EXPECT_EQ(repair_utf8("\xF4\x90\x80\x80").text.size(), 12u);  // four replacements
}

TEST(Utf8, RepairedOffsetsMapBack) {
  // "a" + bad(2 bytes) + "bc": repaired "a" U+FFFD "bc" (1 + 3 + 2 bytes).
  RepairedText r = repair_utf8(
      "a\xE2\x82"
      "bc");
  ASSERT_EQ(r.text,
            "a\xEF\xBF\xBD"
            "bc");
  EXPECT_EQ(r.to_original(0, false), 0u);
  EXPECT_EQ(r.to_original(1, false), 1u);  // the replacement starts where the bad bytes start
  EXPECT_EQ(r.to_original(4, true), 3u);   // and ends where they end
  EXPECT_EQ(r.to_original(4, false), 3u);  // "b"
  EXPECT_EQ(r.to_original(6, true), 5u);
}

TEST(CharClasses, BertPunctuationIncludesAsciiSymbols) {
  for (char32_t c : {U'$', U'^', U'`', U'+', U'<', U'~', U'.', U'\u00BF', U'\u3001', U'\u2014'}) {
    EXPECT_TRUE(is_bert_punctuation(c)) << static_cast<std::uint32_t>(c);
  }
  for (char32_t c : {U'a', U'7', U'\u20AC', U'\u00E9', U' '}) {
    EXPECT_FALSE(is_bert_punctuation(c)) << static_cast<std::uint32_t>(c);  // € is Sc
  }
}

TEST(CharClasses, ControlWhitespaceAndCjk) {
  EXPECT_FALSE(is_bert_control(U'\t'));
  EXPECT_FALSE(is_bert_control(U'\n'));
  EXPECT_TRUE(is_bert_control(U'\x07'));
  EXPECT_TRUE(is_bert_control(U'\u200B'));  // Cf
  EXPECT_TRUE(is_bert_control(U'\u00AD'));  // soft hyphen, Cf
  EXPECT_TRUE(is_bert_whitespace(U'\u00A0'));
  EXPECT_TRUE(is_bert_whitespace(U'\u3000'));
  EXPECT_FALSE(is_bert_whitespace(U'\u2028'));  // Zl is not BERT whitespace...
  EXPECT_TRUE(is_python_space(U'\u2028'));      // ...but str.split() splits on it
  EXPECT_TRUE(is_python_space(U'\x1C'));
  EXPECT_FALSE(is_white_space(U'\x1C'));  // not White_Space (Rust)
  EXPECT_TRUE(is_white_space(U'\u0085'));
  EXPECT_TRUE(is_cjk_ideograph(U'\u4E2D'));
  EXPECT_TRUE(is_cjk_ideograph(U'\U00020000'));
  EXPECT_FALSE(is_cjk_ideograph(U'\u3042'));  // hiragana
  // Python's block starts at U+2B820, the Rust BertNormalizer's at U+2B920.
  EXPECT_TRUE(is_cjk_ideograph(U'\U0002B820'));
  EXPECT_FALSE(is_cjk_ideograph(U'\U0002B820', /*rust=*/true));
  EXPECT_TRUE(is_cjk_ideograph(U'\U0002B920', /*rust=*/true));
}

TEST(CharClasses, NfcInert) {
  EXPECT_TRUE(is_nfc_inert(U'a'));
  EXPECT_TRUE(is_nfc_inert(U'\u00E9'));   // precomposed é is stable
  EXPECT_TRUE(is_nfc_inert(U'\uAC00'));   // Hangul syllable
  EXPECT_FALSE(is_nfc_inert(U'\u0301'));  // combining acute
  EXPECT_FALSE(is_nfc_inert(U'\u212B'));  // ANGSTROM SIGN -> Å
  EXPECT_FALSE(is_nfc_inert(U'\u1161'));  // Hangul vowel jamo composes with a leading jamo
  EXPECT_FALSE(is_nfc_inert(U'\u0958'));  // composition exclusion
  EXPECT_FALSE(is_nfc_inert(U'\u0B3E'));  // starter that composes with U+0B47
}

TEST(Normalize, NfcMergesAndKeepsSourceRanges) {
  AlignedChars out;
  nfc(aligned("e\xCC\x81x"), out);  // e + U+0301 + x
  ASSERT_EQ(text_of(out), "\xC3\xA9x");
  EXPECT_EQ(out[0].source, (Offset{0, 3}));
  EXPECT_EQ(out[1].source, (Offset{3, 4}));
  nfc(aligned("\xE1\x84\x80\xE1\x85\xA1"), out);  // Hangul L + V -> 가
  EXPECT_EQ(text_of(out), "\xEA\xB0\x80");
}

TEST(Normalize, PythonLowerFullMappingAndFinalSigma) {
  AlignedChars out;
  lower_python(aligned("\xCE\x9F\xCE\x94\xCE\x9F\xCE\xA3"), out);  // ΟΔΟΣ -> οδος
  EXPECT_EQ(text_of(out), "\xCE\xBF\xCE\xB4\xCE\xBF\xCF\x82");
  lower_python(aligned("\xCE\xA3\xCE\x91"), out);  // ΣΑ -> σα
  EXPECT_EQ(text_of(out), "\xCF\x83\xCE\xB1");
  lower_python(aligned("A\xCE\xA3\x07"
                       "B"),
               out);  // 'AΣ\x07B'.lower() == 'aς\x07b'
  EXPECT_EQ(text_of(out),
            "a\xCF\x82\x07"
            "b");
  lower_python(aligned("\xC4\xB0"), out);  // İ -> i + U+0307, both from the same source
  EXPECT_EQ(text_of(out), "i\xCC\x87");
  EXPECT_EQ(out[1].source, (Offset{0, 2}));
  lower_per_char(aligned("\xCE\x9F\xCE\xA3"), out);  // Rust: no final-sigma rule
  EXPECT_EQ(text_of(out), "\xCE\xBF\xCF\x83");
}

TEST(Normalize, StripAccentsDropsNonspacingMarks) {
  AlignedChars out;
  strip_accents(aligned("Caf\xC3\xA9"), out);
  EXPECT_EQ(text_of(out), "Cafe");
  EXPECT_EQ(out[3].source, (Offset{3, 5}));
  strip_accents(aligned("\xE1\xBB\x87"), out);  // ệ (two marks)
  EXPECT_EQ(text_of(out), "e");
}

}  // namespace
