// Unit tests of each pipeline component on hand-computed cases: BERT normalizer and
// pre-tokenizer (and that the fused fast path agrees with them on random text), WordPiece,
// added-token splitting, truncation algorithms and decoding helpers.
#include <gtest/gtest.h>

#include <random>

#include "common/test_env.h"
#include "text/added_vocab.h"
#include "text/bert_splitter.h"
#include "text/pipeline.h"
#include "text/wordpiece.h"
#include "xlt/core/error.h"

using namespace xlt::text;

namespace {

struct Collected {
  std::string text;
  Offset source;
  bool whole;
};

class CollectSink : public BertWordSink {
 public:
  void word(std::string_view w, const Offset* align, std::size_t origin, bool whole) override {
    Offset o =
        align ? Offset{align[0].begin, align[w.size() - 1].end} : Offset{origin, origin + w.size()};
    if (align) {
      for (std::size_t i = 0; i < w.size(); ++i) {
        o.begin = std::min(o.begin, align[i].begin);
        o.end = std::max(o.end, align[i].end);
      }
    }
    words.push_back({std::string(w), o, whole});
  }
  std::vector<Collected> words;
};

std::vector<std::string> split_words(const BertOptions& o, const std::string& text) {
  CollectSink sink;
  BertSplitter(o).split(text, 0, sink);
  std::vector<std::string> out;
  for (const auto& w : sink.words) out.push_back(w.text);
  return out;
}

std::vector<std::string> component_words(const BertOptions& o, const std::string& text) {
  std::vector<std::string> out;
  for (const auto& w : bert_pre_tokenize(bert_normalize(text, 0, o), o)) out.push_back(w.text);
  return out;
}

using Words = std::vector<std::string>;

TEST(BertSplitter, SplitsWhitespaceAndPunctuation) {
  BertOptions o;
  EXPECT_EQ(split_words(o, "Hello, world!"), (Words{"Hello", ",", "world", "!"}));
  EXPECT_EQ(split_words(o, "  it's $3.14\t(ok)\n"),
            (Words{"it", "'", "s", "$", "3", ".", "14", "(", "ok", ")"}));
  EXPECT_EQ(split_words(o, "\xC2\xBFQu\xC3\xA9?"), (Words{"\xC2\xBF", "Qu\xC3\xA9", "?"}));
}

TEST(BertSplitter, SpacesAroundCjkIdeographs) {
  BertOptions o;
  // 我爱NLP -> 我 爱 NLP; hiragana is not split off.
  EXPECT_EQ(split_words(o, "\xE6\x88\x91\xE7\x88\xB1NLP"),
            (Words{"\xE6\x88\x91", "\xE7\x88\xB1", "NLP"}));
  EXPECT_EQ(split_words(o, "\xE3\x81\x82\xE3\x81\x84"), (Words{"\xE3\x81\x82\xE3\x81\x84"}));
}

TEST(BertSplitter, DroppedControlCharactersJoinTheWord) {
  BertOptions o;
  CollectSink sink;
  BertSplitter(o).split("Con\x07trol x", 10, sink);
  ASSERT_EQ(sink.words.size(), 2u);
  EXPECT_EQ(sink.words[0].text, "Control");
  EXPECT_EQ(sink.words[0].source, (Offset{10, 18}));  // spans the dropped byte
  EXPECT_EQ(sink.words[1].source, (Offset{19, 20}));
  // Zero-width space (Cf) is dropped too; no-break space splits.
  EXPECT_EQ(split_words(o,
                        "a\xE2\x80\x8B"
                        "b\xC2\xA0"
                        "c"),
            (Words{"ab", "c"}));
}

TEST(BertSplitter, SlowAppliesNfcFastDoesNot) {
  BertOptions slow;
  BertOptions fast;
  fast.flavor = BertFlavor::kFast;
  fast.lowercase = false;
  const std::string decomposed = "e\xCC\x81t\xC3\xA9";  // e + U+0301, t, é
  EXPECT_EQ(split_words(slow, decomposed), (Words{"\xC3\xA9t\xC3\xA9"}));
  EXPECT_EQ(split_words(fast, decomposed), (Words{"e\xCC\x81t\xC3\xA9"}));
}

TEST(BertSplitter, LowercaseAndAccentStripping) {
  BertOptions o;
  o.lowercase = true;  // strip_accents unset: follows lowercase
  EXPECT_EQ(split_words(o, "H\xC3\xA9LLO W\xC3\xB6rld"), (Words{"hello", "world"}));
  o.strip_accents = false;
  EXPECT_EQ(split_words(o, "H\xC3\xA9LLO"), (Words{"h\xC3\xA9llo"}));
  BertOptions cased;
  cased.strip_accents = true;  // accents stripped without lowercasing
  EXPECT_EQ(split_words(cased, "H\xC3\xA9LLO"), (Words{"HeLLO"}));
}

TEST(BertSplitter, NeverSplitWordsStayWhole) {
  BertOptions o;
  o.never_split = {"<keep-me>"};
  CollectSink sink;
  BertSplitter(o).split("a <keep-me> b", 0, sink);
  ASSERT_EQ(sink.words.size(), 3u);
  EXPECT_EQ(sink.words[1].text, "<keep-me>");
  EXPECT_TRUE(sink.words[1].whole);
}

TEST(BertSplitter, WithoutBasicTokenizeOnlyWhitespaceSplits) {
  BertOptions o;
  o.basic_tokenize = false;
  EXPECT_EQ(split_words(o, "Hello, world!"), (Words{"Hello,", "world!"}));
}

// The fused fast path must give exactly the component pipeline's words and sources, for every
// flavour, on random strings of characters chosen to hit every special case.
TEST(BertSplitter, FusedPathEqualsComponentsOnRandomText) {
  const std::vector<std::string> alphabet = {"a",
                                             "Z",
                                             "7",
                                             " ",
                                             "  ",
                                             "\t",
                                             "\n",
                                             "\r",
                                             ",",
                                             "$",
                                             "'",
                                             "\x07",
                                             "\x7F",
                                             "\xC3\xA9",
                                             "e\xCC\x81",
                                             "\xCC\x81",
                                             "\xE4\xB8\xAD",
                                             "\xEF\xA4\x80" /* U+F900 */,
                                             "\xE2\x80\x8B",
                                             "\xC2\xA0",
                                             "\xE2\x80\xA8",
                                             "\xCE\xA3",
                                             "\xC4\xB0",
                                             "\xEF\xAC\x81",
                                             "\xE2\x84\xAB",
                                             "\xEF\xBF\xBD",
                                             "\xE1\x84\x80",
                                             "\xE1\x85\xA1",
                                             "\xC2\xBF",
                                             "\xE1\xBF\xAF" /* → ` */,
                                             "\xF0\x9F\x98\x80",
                                             "\xC2\x85",
                                             "\x1C"};
  std::mt19937 rng(20240501);
  std::uniform_int_distribution<std::size_t> pick(0, alphabet.size() - 1), len(0, 24);
  for (int flavor = 0; flavor < 2; ++flavor) {
    for (int lower = 0; lower < 2; ++lower) {
      BertOptions o;
      o.flavor = flavor ? BertFlavor::kFast : BertFlavor::kSlow;
      o.lowercase = lower;
      BertSplitter splitter(o);
      for (int trial = 0; trial < 400; ++trial) {
        std::string text;
        for (std::size_t k = len(rng); k > 0; --k) text += alphabet[pick(rng)];
        CollectSink sink;
        splitter.split(text, 0, sink);
        auto expected = bert_pre_tokenize(bert_normalize(text, 0, o), o);
        ASSERT_EQ(sink.words.size(), expected.size()) << "flavor " << flavor << " text " << text;
        for (std::size_t i = 0; i < expected.size(); ++i) {
          EXPECT_EQ(sink.words[i].text, expected[i].text) << text;
          Offset hull{expected[i].align[0].begin, expected[i].align[0].end};
          for (const Offset& a : expected[i].align) {
            hull.begin = std::min(hull.begin, a.begin);
            hull.end = std::max(hull.end, a.end);
          }
          EXPECT_EQ(sink.words[i].source, hull) << text;
        }
        EXPECT_EQ(split_words(o, text), component_words(o, text));
      }
    }
  }
}

WordPiece toy_wordpiece(std::size_t max_chars = 100) {
  return WordPiece({"[UNK]", "un", "##aff", "##able", "a", "##b", "caf", "##\xC3\xA9", "##s"},
                   "[UNK]", "##", max_chars, "toy vocab");
}

std::vector<std::string> wp_tokens(const WordPiece& wp, const std::string& word) {
  Pieces p;
  wp.tokenize_word(word, nullptr, 0, p);
  return p.tokens;
}

TEST(WordPiece, GreedyLongestMatchFirst) {
  WordPiece wp = toy_wordpiece();
  EXPECT_EQ(wp_tokens(wp, "unaffable"), (Words{"un", "##aff", "##able"}));
  EXPECT_EQ(wp_tokens(wp, "ab"), (Words{"a", "##b"}));
  EXPECT_EQ(wp_tokens(wp, "caf\xC3\xA9s"), (Words{"caf", "##\xC3\xA9", "##s"}));
}

TEST(WordPiece, UnmatchedRemainderMakesTheWholeWordUnknown) {
  WordPiece wp = toy_wordpiece();
  Pieces p;
  wp.tokenize_word("unaffx", nullptr, 5, p);
  ASSERT_EQ(p.tokens, (Words{"[UNK]"}));
  EXPECT_EQ(p.ids[0], 0);
  EXPECT_EQ(p.offsets[0], (Offset{5, 11}));
}

TEST(WordPiece, WordsLongerThanTheLimitAreUnknown) {
  WordPiece wp = toy_wordpiece(3);
  EXPECT_EQ(wp_tokens(wp, "ab"), (Words{"a", "##b"}));
  EXPECT_EQ(wp_tokens(wp, "abbb"), (Words{"[UNK]"}));
  // The limit counts characters, not bytes: "café" is 4 characters.
  EXPECT_EQ(wp_tokens(wp, "caf\xC3\xA9"), (Words{"[UNK]"}));
}

TEST(WordPiece, OffsetsOfPieces) {
  WordPiece wp = toy_wordpiece();
  Pieces p;
  wp.tokenize_word("unaffable", nullptr, 100, p);
  EXPECT_EQ(p.offsets, (std::vector<Offset>{{100, 102}, {102, 105}, {105, 109}}));
}

TEST(WordPiece, DuplicateTokensAndMissingUnkAreErrors) {
  try {
    WordPiece({"[UNK]", "a", "b", "a"}, "[UNK]", "##", 100, "v.txt");
    FAIL() << "duplicate accepted";
  } catch (const xlt::TokenizerError& e) {
    EXPECT_NE(std::string(e.what()).find("'a' appears twice (ids 1 and 3)"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(WordPiece({"a", "b"}, "[UNK]", "##", 100, "v.txt"), xlt::TokenizerError);
}

AddedVocabulary toy_added() {
  AddedVocabulary v;
  v.add({"<s>", 0});
  v.add({"</s>", 2});
  AddedToken mask{"<mask>", 9};
  mask.lstrip = true;
  v.add(mask);
  AddedToken r{"<r>", 10};
  r.rstrip = true;
  v.add(r);
  return v;
}

std::vector<std::string> segments(const AddedVocabulary& v, const std::string& text) {
  std::vector<AddedVocabulary::Segment> segs;
  v.split(text, segs);
  std::vector<std::string> out;
  for (const auto& s : segs) {
    out.push_back((s.token ? "T:" : "") + text.substr(s.begin, s.end - s.begin));
  }
  return out;
}

TEST(AddedVocabulary, SplitsOnAddedTokens) {
  AddedVocabulary v = toy_added();
  EXPECT_EQ(segments(v, "<s> inside </s> x"), (Words{"T:<s>", " inside ", "T:</s>", " x"}));
  EXPECT_EQ(segments(v, "no tokens here"), (Words{"no tokens here"}));
  EXPECT_EQ(segments(v, ""), Words{});
  EXPECT_EQ(segments(v, "<s></s>"), (Words{"T:<s>", "T:</s>"}));
  EXPECT_EQ(segments(v, "<ss"), (Words{"<ss"}));
}

TEST(AddedVocabulary, LstripAndRstripEatNeighbouringWhitespace) {
  AddedVocabulary v = toy_added();
  // <mask> has lstrip: "hello <mask> world" -> "hello", <mask>, " world" (HF XLM-R).
  EXPECT_EQ(segments(v, "hello \t<mask> world"), (Words{"hello", "T:<mask>", " world"}));
  EXPECT_EQ(segments(v, "a <r>  b"), (Words{"a ", "T:<r>", "b"}));
  EXPECT_EQ(segments(v, "   <mask>"), (Words{"T:<mask>"}));  // whitespace-only text vanishes
}

TEST(AddedVocabulary, SingleWordTokensOnlyMatchWholeWords) {
  AddedVocabulary v;
  AddedToken t{"tok", 5};
  t.single_word = true;
  v.add(t);
  EXPECT_EQ(segments(v, "a tok b"), (Words{"a ", "T:tok", " b"}));
  EXPECT_EQ(segments(v, "atok b"), (Words{"atok", " b"}));
}

TEST(AddedVocabulary, LongestMatchAtAPosition) {
  AddedVocabulary v;
  v.add({"extra_id_1", 1});
  v.add({"extra_id_100", 2});
  EXPECT_EQ(segments(v, "a extra_id_100"), (Words{"a ", "T:extra_id_100"}));
}

Pieces n_pieces(std::size_t n) {
  Pieces p;
  for (std::size_t i = 0; i < n; ++i) p.push(static_cast<TokenId>(i), "t", {});
  return p;
}

TEST(Truncation, PythonLongestFirstGivesTheExtraTokenToTheFirstText) {
  // 10 + 20 tokens into 15: Python removes one at a time from the longer one (the second on
  // ties) and ends with 8 + 7; Rust's formula gives 7 + 8.
  Pieces a = n_pieces(10), b = n_pieces(20);
  EXPECT_EQ(truncate_pieces(a, &b, 15, 0, TruncationStrategy::kLongestFirst, Backend::kSlow), 15u);
  EXPECT_EQ(a.size(), 8u);
  EXPECT_EQ(b.size(), 7u);
  a = n_pieces(10);
  b = n_pieces(20);
  EXPECT_EQ(truncate_pieces(a, &b, 15, 0, TruncationStrategy::kLongestFirst, Backend::kFast), 15u);
  EXPECT_EQ(a.size(), 7u);
  EXPECT_EQ(b.size(), 8u);
}

TEST(Truncation, LongerSequenceIsCutFirstAndSpecialTokensCount) {
  for (Backend backend : {Backend::kSlow, Backend::kFast}) {
    Pieces a = n_pieces(4), b = n_pieces(30);
    // max 16 with 3 special tokens: 13 tokens for the texts, the short one kept whole.
    truncate_pieces(a, &b, 16, 3, TruncationStrategy::kLongestFirst, backend);
    EXPECT_EQ(a.size(), 4u);
    EXPECT_EQ(b.size(), 9u);
    Pieces single = n_pieces(40);
    truncate_pieces(single, nullptr, 32, 2, TruncationStrategy::kLongestFirst, backend);
    EXPECT_EQ(single.size(), 30u);
  }
}

TEST(Truncation, OnlySecondAndImpossibleCases) {
  Pieces a = n_pieces(10), b = n_pieces(10);
  truncate_pieces(a, &b, 15, 0, TruncationStrategy::kOnlySecond, Backend::kSlow);
  EXPECT_EQ(a.size(), 10u);
  EXPECT_EQ(b.size(), 5u);
  // only_second cannot remove 12 from a 10-token second text: HF leaves both alone.
  a = n_pieces(10);
  b = n_pieces(10);
  EXPECT_EQ(truncate_pieces(a, &b, 8, 0, TruncationStrategy::kOnlySecond, Backend::kSlow), 0u);
  EXPECT_EQ(b.size(), 10u);
  // The Rust tokenizer (tokenizer.json) refuses instead: SequenceTooShort, and
  // SecondSequenceNotProvided for only_second without a pair.
  EXPECT_TRUE(xlt::test::throws_with<xlt::TokenizerError>(
      [&] { truncate_pieces(a, &b, 8, 0, TruncationStrategy::kOnlySecond, Backend::kFast); },
      {"only_second: the second sequence has 10 tokens, too few to remove the 12"}, 2));
  EXPECT_EQ(b.size(), 10u);
  Pieces alone = n_pieces(10);
  EXPECT_TRUE(xlt::test::throws_with<xlt::TokenizerError>(
      [&] {
        truncate_pieces(alone, nullptr, 8, 0, TruncationStrategy::kOnlySecond, Backend::kFast);
      },
      {"second sequence not provided"}));
  a = n_pieces(10);
  EXPECT_EQ(truncate_pieces(a, &b, 15, 0, TruncationStrategy::kOnlyFirst, Backend::kFast), 5u);
  EXPECT_EQ(a.size(), 5u);
  Pieces fits = n_pieces(5);
  EXPECT_EQ(truncate_pieces(fits, nullptr, 7, 2, TruncationStrategy::kLongestFirst, Backend::kSlow),
            0u);
}

TEST(Decoding, CleanUpTokenizationAndPythonStrip) {
  EXPECT_EQ(clean_up_tokenization("Hello , world ! it ' s I 'm do n't"),
            "Hello, world! it's I'm don't");
  EXPECT_EQ(python_strip("\xE3\x80\x80 a b\t\n"), "a b");  // U+3000 is whitespace
}

}  // namespace
