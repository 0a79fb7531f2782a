// Integration tests of the public tokenizer API on the shared mBERT vocabulary and the
// SentencePiece fixtures: loading rules, special tokens, pair templates, truncation, padding,
// batch encoding on threads, decoding, invalid input and bad tokenizer files.
#include "xlt/text/tokenizer.h"

#include "common/test_env.h"
#include "xlt/core/error.h"

namespace fs = std::filesystem;
using namespace xlt::text;
using xlt::test::fixtures_dir;
using xlt::test::shared_dir;
using xlt::test::TempDir;
using xlt::test::write_text;

namespace {

fs::path mbert_dir() {
  return shared_dir() / "data" / "bert-base-multilingual-cased";
}
fs::path xlmr_dir() {
  return fixtures_dir() / "spm" / "xlmr_unigram";
}
fs::path xglm_dir() {
  return fixtures_dir() / "spm" / "xglm_bpe";
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const xlt::TokenizerError& e) {
    EXPECT_EQ(xlt::exit_code_for(e), 2);
    return e.what();
  }
  ADD_FAILURE() << "no TokenizerError";
  return "";
}

TEST(LoadTokenizer, FolderPrefersTokenizerJsonUnlessSlow) {
  XLT_REQUIRE_PATH(mbert_dir() / "tokenizer.json");
  auto fast = load_tokenizer(mbert_dir());
  EXPECT_EQ(fast->info().backend, Backend::kFast);
  EXPECT_EQ(fast->info().tokenizer_class, "BertTokenizerFast");
  LoadOptions slow_opt;
  slow_opt.prefer_slow = true;
  auto slow = load_tokenizer(mbert_dir(), slow_opt);
  EXPECT_EQ(slow->info().backend, Backend::kSlow);
  auto from_vocab = load_tokenizer(mbert_dir() / "vocab.txt");
  EXPECT_EQ(from_vocab->info().backend, Backend::kSlow);
  for (const Tokenizer* t : {fast.get(), slow.get(), from_vocab.get()}) {
    EXPECT_EQ(t->info().family, TokenizerFamily::kBert);
    EXPECT_TRUE(t->info().uses_token_type_ids);
    EXPECT_FALSE(t->info().do_lower_case);
    EXPECT_EQ(t->info().model_max_length, 512u);
    EXPECT_EQ(t->vocab_size(), 119547u);
    const SpecialTokens& s = t->special_tokens();
    EXPECT_EQ(s.pad.id, 0);
    EXPECT_EQ(s.unk.id, 100);
    EXPECT_EQ(s.cls.id, 101);
    EXPECT_EQ(s.sep.id, 102);
    EXPECT_EQ(s.mask.id, 103);
    EXPECT_FALSE(s.bos.present());
    EXPECT_EQ(t->num_special_tokens_to_add(false), 2u);
    EXPECT_EQ(t->num_special_tokens_to_add(true), 3u);
  }
}

TEST(LoadTokenizer, SentencePieceFamiliesAndIdLayout) {
  XLT_REQUIRE_PATH(xlmr_dir());
  auto xlmr = load_tokenizer(xlmr_dir());
  EXPECT_EQ(xlmr->info().family, TokenizerFamily::kXlmRoberta);
  EXPECT_EQ(xlmr->vocab_size(), 4002u);
  EXPECT_EQ(xlmr->special_tokens().mask.id, 4001);
  EXPECT_EQ(xlmr->special_tokens().pad.id, 1);
  EXPECT_EQ(xlmr->id_to_token(4001), "<mask>");
  EXPECT_EQ(xlmr->id_to_token(3), "<unk>");
  EXPECT_EQ(*xlmr->token_to_id("</s>"), 2);
  EXPECT_EQ(xlmr->num_special_tokens_to_add(true), 4u);
  auto xglm = load_tokenizer(xglm_dir() / "sentencepiece.bpe.model");  // config beside it
  EXPECT_EQ(xglm->info().family, TokenizerFamily::kXglm);
  EXPECT_EQ(xglm->vocab_size(), 4008u);
  ASSERT_EQ(xglm->special_tokens().additional.size(), 7u);
  EXPECT_EQ(xglm->special_tokens().additional[6].content, "<madeupword6>");
  EXPECT_EQ(xglm->special_tokens().additional[6].id, 4007);
  EXPECT_EQ(xglm->num_special_tokens_to_add(false), 1u);
  EXPECT_THROW(xglm->id_to_token(4008), xlt::TokenizerError);
}

TEST(Encode, BertPairTemplateAndOffsets) {
  XLT_REQUIRE_PATH(mbert_dir() / "vocab.txt");
  auto tok = load_tokenizer(mbert_dir() / "vocab.txt");
  const std::string a = "Hello, world!", b = "Caf\xC3\xA9 au lait";
  Encoding e = tok->encode_pair(a, b);
  EXPECT_EQ(e.tokens.front(), "[CLS]");
  EXPECT_EQ(e.ids.front(), 101);
  std::vector<std::int32_t> types(e.size(), 0), seq;
  bool second = false;
  for (std::size_t i = 0; i < e.size(); ++i) {
    if (i > 0 && e.ids[i - 1] == 102) second = true;
    types[i] = second ? 1 : 0;
  }
  EXPECT_EQ(e.token_type_ids, types);
  EXPECT_EQ(e.special_tokens_mask.front(), 1);
  EXPECT_EQ(e.special_tokens_mask.back(), 1);
  // Byte offsets slice back: "Café" is bytes [0, 5) of the second text.
  for (std::size_t i = 0; i < e.size(); ++i) {
    if (e.sequence_ids[i] == 1 && e.tokens[i] == "Caf\xC3\xA9") {
      EXPECT_EQ(e.offsets[i], (Offset{0, 5}));
    }
    if (e.sequence_ids[i] == 0 && e.tokens[i] == ",") {
      EXPECT_EQ(e.offsets[i], (Offset{5, 6}));
    }
  }
  EXPECT_EQ(e.sequence_token_ids(0), tok->encode(a, EncodeOptions{false}).ids);
}

TEST(Encode, TruncationAndPaddingToMaxLength) {
  XLT_REQUIRE_PATH(mbert_dir() / "vocab.txt");
  auto tok = load_tokenizer(mbert_dir() / "vocab.txt");
  EncodeOptions o;
  o.truncation = TruncationStrategy::kLongestFirst;
  o.max_length = 8;
  o.padding = PaddingStrategy::kMaxLength;
  Encoding e = tok->encode_pair("one two three four five six", "a b", o);
  // 8 = [CLS] + 3 first + [SEP] + 2 second + [SEP]: the longer first text is cut to 3.
  ASSERT_EQ(e.size(), 8u);
  EXPECT_EQ(e.sequence_tokens(0), (std::vector<std::string>{"one", "two", "three"}));
  EXPECT_EQ(e.sequence_tokens(1), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(e.num_truncated, 3u);
  Encoding padded = tok->encode("short", o);
  ASSERT_EQ(padded.size(), 8u);
  EXPECT_EQ(padded.ids[3], 0);
  EXPECT_EQ(padded.tokens[3], "[PAD]");
  EXPECT_EQ(padded.attention_mask, (std::vector<std::int32_t>{1, 1, 1, 0, 0, 0, 0, 0}));
  EXPECT_EQ(padded.special_tokens_mask, (std::vector<std::int32_t>{1, 0, 1, 1, 1, 1, 1, 1}));
}

TEST(Encode, BatchOnThreadsEqualsOneByOneAndPadsToLongest) {
  XLT_REQUIRE_PATH(mbert_dir() / "vocab.txt");
  auto tok = load_tokenizer(mbert_dir() / "vocab.txt");
  std::vector<std::string> texts;
  for (int i = 0; i < 500; ++i) {
    texts.push_back("sentence number " + std::to_string(i) + std::string(i % 7, '!') +
                    " \xC3\xA9t\xC3\xA9");
  }
  EncodeOptions o;
  o.padding = PaddingStrategy::kLongest;
  auto batch = tok->encode_batch(texts, o, 4);
  std::size_t longest = 0;
  for (const auto& t : texts) longest = std::max(longest, tok->encode(t).size());
  for (std::size_t i = 0; i < texts.size(); ++i) {
    Encoding one = tok->encode(texts[i]);
    ASSERT_EQ(batch[i].size(), longest);
    EXPECT_TRUE(std::equal(one.ids.begin(), one.ids.end(), batch[i].ids.begin())) << i;
    for (std::size_t k = one.size(); k < longest; ++k) EXPECT_EQ(batch[i].attention_mask[k], 0);
  }
  o.pad_to_multiple_of = 8;
  auto rounded = tok->encode_pair_batch({{"a", "b"}, {"a b c", "d"}}, o, 2);
  EXPECT_EQ(rounded[0].size(), 8u);
  EXPECT_EQ(rounded[1].size(), 8u);
}

// truncation_side "left" cuts a text's start in both backends (transformers' slow
// truncate_sequences slices ids[n:], the Rust Encoding::truncate keeps the last tokens); the
// counts kept per text are those of the right-side cut, and offsets still index the input.
TEST(Encode, TruncationSideLeftCutsTheStart) {
  XLT_REQUIRE_PATH(mbert_dir() / "tokenizer.json");
  for (const char* file : {"vocab.txt", "tokenizer.json"}) {
    SCOPED_TRACE(file);
    TempDir dir;
    fs::copy_file(mbert_dir() / file, dir / file);
    write_text(dir / "tokenizer_config.json", R"({"truncation_side": "left"})");
    auto tok = load_tokenizer(dir.path());
    EncodeOptions o;
    o.truncation = TruncationStrategy::kLongestFirst;
    o.max_length = 5;
    Encoding single = tok->encode("a b c d e f", o);
    EXPECT_EQ(single.tokens, (std::vector<std::string>{"[CLS]", "d", "e", "f", "[SEP]"}));
    EXPECT_EQ(single.offsets[1], (Offset{6, 7}));
    EXPECT_EQ(single.num_truncated, 3u);
    // 5 + 3 tokens and 3 specials into 8: both algorithms keep 3 of the first and 2 of the second.
    o.max_length = 8;
    Encoding pair = tok->encode_pair("a b c d e", "f g h", o);
    EXPECT_EQ(pair.tokens,
              (std::vector<std::string>{"[CLS]", "c", "d", "e", "[SEP]", "g", "h", "[SEP]"}));
    EXPECT_EQ(pair.token_type_ids, (std::vector<std::int32_t>{0, 0, 0, 0, 0, 1, 1, 1}));
    o.truncation = TruncationStrategy::kOnlySecond;
    o.max_length = 7;
    EXPECT_EQ(tok->encode_pair("a b", "c d e f", o).tokens,
              (std::vector<std::string>{"[CLS]", "a", "b", "[SEP]", "e", "f", "[SEP]"}));
    o.truncation = TruncationStrategy::kOnlyFirst;
    EXPECT_EQ(tok->encode_pair("a b c d", "e f", o).tokens,
              (std::vector<std::string>{"[CLS]", "c", "d", "[SEP]", "e", "f", "[SEP]"}));
  }
}

TEST(LoadTokenizer, TruncationSideIsChecked) {
  XLT_REQUIRE_PATH(mbert_dir() / "vocab.txt");
  TempDir dir;
  fs::copy_file(mbert_dir() / "vocab.txt", dir / "vocab.txt");
  write_text(dir / "tokenizer_config.json", R"({"truncation_side": "right"})");
  EXPECT_EQ(load_tokenizer(dir.path())->info().truncation_side, TruncationSide::kRight);
  write_text(dir / "tokenizer_config.json", R"({"truncation_side": null})");
  EXPECT_EQ(load_tokenizer(dir.path())->info().truncation_side, TruncationSide::kRight);
  write_text(dir / "tokenizer_config.json", R"({"truncation_side": "middle"})");
  EXPECT_NE(error_of([&] {
              load_tokenizer(dir.path());
            }).find("truncation_side must be \"left\" or \"right\", got \"middle\""),
            std::string::npos);
  write_text(dir / "tokenizer_config.json", R"({"truncation_side": 1})");
  EXPECT_NE(error_of([&] { load_tokenizer(dir.path()); }).find("truncation_side"),
            std::string::npos);
}

TEST(Encode, LeftPaddingFromConfig) {
  XLT_REQUIRE_PATH(mbert_dir() / "vocab.txt");
  TempDir dir;
  fs::copy_file(mbert_dir() / "vocab.txt", dir / "vocab.txt");
  write_text(dir / "tokenizer_config.json",
             R"({"do_lower_case": false, "padding_side": "left", "model_max_length": 6})");
  auto tok = load_tokenizer(dir.path());
  EncodeOptions o;
  o.padding = PaddingStrategy::kMaxLength;  // to model_max_length
  Encoding e = tok->encode("Hi", o);
  EXPECT_EQ(e.attention_mask, (std::vector<std::int32_t>{0, 0, 0, 1, 1, 1}));
  EXPECT_EQ(e.ids.back(), 102);
}

TEST(Decode, BertSlowAndFast) {
  XLT_REQUIRE_PATH(mbert_dir() / "tokenizer.json");
  for (bool slow : {true, false}) {
    LoadOptions lo;
    lo.prefer_slow = slow;
    auto tok = load_tokenizer(mbert_dir(), lo);
    Encoding e = tok->encode("Hello, world! Don't stop.");
    EXPECT_EQ(tok->decode(e.ids), "[CLS] Hello, world! Don't stop. [SEP]") << slow;
    DecodeOptions skip;
    skip.skip_special_tokens = true;
    EXPECT_EQ(tok->decode(e.ids, skip), "Hello, world! Don't stop.") << slow;
    DecodeOptions raw;
    raw.clean_up_tokenization_spaces = false;
    raw.skip_special_tokens = true;
    // The Rust WordPiece decoder cleans up each token on its own (" ." but not " ' ").
    EXPECT_EQ(tok->decode(e.ids, raw),
              slow ? "Hello , world ! Don ' t stop ." : "Hello, world! Don ' t stop.");
  }
}

TEST(Encode, UncasedVocabularyLowercasesAndStripsAccents) {
  TempDir dir;
  write_text(dir / "vocab.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\ncafe\nhello\n,\n");
  auto tok = load_tokenizer(dir / "vocab.txt");  // no config: HF's default do_lower_case=True
  EXPECT_TRUE(tok->info().do_lower_case);
  EXPECT_EQ(tok->tokenize("H\xC3\xA9LLO, Caf\xC3\xA9 [MASK]"),
            (std::vector<std::string>{"hello", ",", "cafe", "[MASK]"}));
  // No tokenizer_config.json: no model_max_length, so padding to max_length needs max_length.
  EncodeOptions pad;
  pad.padding = PaddingStrategy::kMaxLength;
  EXPECT_NE(error_of([&] { tok->encode("hello", pad); }).find("needs a max_length"),
            std::string::npos);
  pad.max_length = 4;
  EXPECT_EQ(tok->encode("hello", pad).ids, (std::vector<TokenId>{2, 6, 3, 0}));
  LoadOptions cased;
  cased.do_lower_case = false;
  auto tok2 = load_tokenizer(dir / "vocab.txt", cased);
  EXPECT_EQ(tok2->tokenize("Hello"), (std::vector<std::string>{"[UNK]"}));
}

// U+2B820..U+2B91F are CJK ideographs to transformers' Python BasicTokenizer (spaced out) but not
// to the Rust BertNormalizer (part of the word): "a\U0002B820b" is a, [UNK], b slow and one
// unknown word fast.
TEST(Encode, CjkBlockDiffersBetweenPythonAndRust) {
  XLT_REQUIRE_PATH(mbert_dir() / "tokenizer.json");
  const std::string text =
      "a\xF0\xAB\xA0\xA0"
      "b";  // a U+2B820 b
  auto fast = load_tokenizer(mbert_dir());
  EXPECT_EQ(fast->encode(text).ids, (std::vector<TokenId>{101, 100, 102}));
  auto slow = load_tokenizer(mbert_dir() / "vocab.txt");
  const auto ids = slow->encode(text).ids;
  ASSERT_EQ(ids.size(), 5u);
  EXPECT_EQ(ids[2], 100);
  EXPECT_EQ(slow->tokenize(text), (std::vector<std::string>{"a", "[UNK]", "b"}));
}

// transformers' slow tokenizer lowercases character by character before BasicTokenizer
// (tokenize(): re.sub("(.+?)", str.lower)), so a word-final capital sigma becomes σ (U+03C3),
// not the final ς (U+03C2) that str.lower() of the whole word gives.
TEST(Encode, UncasedSlowLowercasesCharacterByCharacter) {
  TempDir dir;
  write_text(dir / "vocab.txt",
             "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n\xCE\xBF\xCE\xB4\xCE\xBF\xCF\x83\n"  // οδοσ
             "\xCE\xBF\xCE\xB4\xCE\xBF\xCF\x82\n");                                    // οδος
  auto tok = load_tokenizer(dir / "vocab.txt");
  EXPECT_EQ(tok->encode("\xCE\x9F\xCE\x94\xCE\x9F\xCE\xA3", EncodeOptions{}).ids,  // ΟΔΟΣ
            (std::vector<TokenId>{2, 5, 3}));
}

TEST(InvalidInput, Utf8ErrorsNameTheByteOffsetOrAreReplaced) {
  XLT_REQUIRE_PATH(mbert_dir() / "vocab.txt");
  auto tok = load_tokenizer(mbert_dir() / "vocab.txt");
  const std::string bad =
      "abc\xFF"
      "def ghi";
  std::string msg = error_of([&] { tok->encode(bad); });
  EXPECT_NE(msg.find("byte offset 3"), std::string::npos) << msg;
  EncodeOptions o;
  o.replace_invalid_utf8 = true;
  Encoding e = tok->encode(bad, o);
  // BERT's cleaning drops U+FFFD, so "abc" and "def" join; offsets still index the input.
  for (std::size_t i = 1; i + 1 < e.size(); ++i) ASSERT_LE(e.offsets[i].end, bad.size());
  EXPECT_EQ(e.offsets[1].begin, 0u);
  EXPECT_EQ(e.offsets[e.size() - 2].end, bad.size());
  auto xlmr = load_tokenizer(xlmr_dir());
  Encoding x = xlmr->encode(
      "a\xE2\x82"
      "b",
      o);
  for (const Offset& off : x.offsets) EXPECT_LE(off.end, 4u);
}

TEST(BadTokenizerFiles, EachGivesOneClearTokenizerError) {
  TempDir dir;
  write_text(dir / "dup.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nword\nword\n");
  EXPECT_NE(error_of([&] { load_tokenizer(dir / "dup.txt"); }).find("'word' appears twice"),
            std::string::npos);
  write_text(dir / "nosep.txt", "[PAD]\n[UNK]\n[CLS]\n[MASK]\nword\n");
  EXPECT_NE(error_of([&] { load_tokenizer(dir / "nosep.txt"); }).find("sep_token '[SEP]'"),
            std::string::npos);
  write_text(dir / "badutf8.txt", "[PAD]\n[UNK]\nb\xFFz\n");
  EXPECT_NE(error_of([&] { load_tokenizer(dir / "badutf8.txt"); }).find("badutf8.txt:3"),
            std::string::npos);
  write_text(dir / "tokenizer.json", R"({"model": {"type": "WordPiece", "vocab": {"a": 0,)");
  EXPECT_NE(error_of([&] { load_tokenizer(dir / "tokenizer.json"); }).find("malformed JSON"),
            std::string::npos);
  // A repeated key would silently override the first (nlohmann keeps the last): refused.
  write_text(dir / "twice.json",
             R"({"model": {"type": "WordPiece", "unk_token": "[UNK]", "vocab": {"a": 0}},)"
             R"( "model": {"type": "WordPiece", "unk_token": "[UNK]", "vocab": {"b": 0}}})");
  EXPECT_NE(error_of([&] { load_tokenizer(dir / "twice.json"); }).find("duplicate key 'model'"),
            std::string::npos)
      << error_of([&] { load_tokenizer(dir / "twice.json"); });
  write_text(dir / "bpe.json", R"({"model": {"type": "BPE", "vocab": {}, "merges": []}})");
  EXPECT_NE(error_of([&] { load_tokenizer(dir / "bpe.json"); }).find("'BPE' is not supported"),
            std::string::npos);
  write_text(
      dir / "ids.json",
      R"({"model": {"type": "WordPiece", "unk_token": "[UNK]", "vocab": {"a": 0, "b": 0}}})");
  EXPECT_NE(error_of([&] { load_tokenizer(dir / "ids.json"); }).find("gives id 0"),
            std::string::npos);
  EXPECT_TRUE(xlt::test::throws_with<xlt::FileNotFound>(
      [&] { load_tokenizer(dir / "missing.txt"); }, {"missing.txt: no such"}, 2));

  write_text(dir / "bom.txt", "\xEF\xBB\xBF[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nword\n");
  EXPECT_NE(error_of([&] {
              load_tokenizer(dir / "bom.txt");
            }).find("bom.txt:1: starts with a UTF-8 byte-order mark"),
            std::string::npos);

  TempDir gpt;
  write_text(gpt / "tokenizer_config.json", R"({"tokenizer_class": "GPT2Tokenizer"})");
  EXPECT_NE(error_of([&] { load_tokenizer(gpt.path()); }).find("'GPT2Tokenizer' is not supported"),
            std::string::npos);
  TempDir spm;
  write_text(spm / "sentencepiece.bpe.model", "not a model");
  write_text(spm / "tokenizer_config.json", R"({"tokenizer_class": "XLMRobertaTokenizer"})");
  EXPECT_NE(error_of([&] { load_tokenizer(spm.path()); }).find("not a valid SentencePiece"),
            std::string::npos);
  TempDir empty;
  EXPECT_NE(error_of([&] { load_tokenizer(empty.path()); }).find("cannot tell which tokenizer"),
            std::string::npos);
}

// Python reads these by truthiness ("false" lowercases, 0 does not); xlt refuses a value that
// is not of the documented type instead of guessing. null is Python's None, as HF reads it:
// false for do_lower_case (checked with transformers: BertTokenizer keeps "HELLO" whole), "not
// set" for strip_accents and model_max_length.
TEST(BadTokenizerFiles, TokenizerConfigValuesOfTheWrongTypeAreRefused) {
  const std::string vocab = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nhello\n";
  const std::vector<std::pair<std::string, std::string>> bad = {
      {R"({"do_lower_case": "false"})", "do_lower_case must be true or false, got \"false\""},
      {R"({"do_lower_case": 0})", "do_lower_case must be true or false, got 0"},
      {R"({"strip_accents": "no"})", "strip_accents must be true or false"},
      {R"({"tokenize_chinese_chars": [true]})", "tokenize_chinese_chars must be true or false"},
      {R"({"model_max_length": "512"})", "model_max_length must be a number, got \"512\""},
      {R"({"padding_side": 1})", "padding_side must be \"left\" or \"right\", got 1"},
      {R"({"padding_side": null})", "padding_side must be \"left\" or \"right\", got null"},
  };
  for (const auto& [config, expect] : bad) {
    TempDir dir;
    write_text(dir / "vocab.txt", vocab);
    write_text(dir / "tokenizer_config.json", config);
    const std::string msg = error_of([&] { load_tokenizer(dir.path()); });
    EXPECT_NE(msg.find("tokenizer_config.json: " + expect), std::string::npos) << config << msg;
  }
  TempDir ok;
  write_text(ok / "vocab.txt", vocab);
  write_text(ok / "tokenizer_config.json",
             R"({"do_lower_case": null, "strip_accents": null, "model_max_length": 8})");
  auto tok = load_tokenizer(ok.path());
  EXPECT_FALSE(tok->info().do_lower_case);
  EXPECT_EQ(tok->tokenize("HELLO"), (std::vector<std::string>{"[UNK]"}));
  EXPECT_EQ(tok->info().model_max_length, 8u);
}

// AutoTokenizer's BertTokenizerFast rebuilds tokenizer.json's normalizer from
// tokenizer_config.json when they disagree. Expected tokens computed with transformers 4.57.6
// (AutoTokenizer.from_pretrained on these folders: mBERT's cased tokenizer.json and the config).
TEST(LoadTokenizer, TokenizerConfigFlagsOverrideTheTokenizerJsonNormalizerAsInTransformers) {
  XLT_REQUIRE_PATH(mbert_dir() / "tokenizer.json");
  const std::string text = "Hello W\xC3\xB3rld \xE4\xB8\xAD\xE6\x96\x87";  // Hello Wórld 中文
  const std::vector<std::pair<std::string, std::vector<std::string>>> cases = {
      // No do_lower_case: BertTokenizerFast's default (true) wins over the cased normalizer.
      {R"({"tokenizer_class": "BertTokenizer"})",
       {"hell", "##o", "world", "\xE4\xB8\xAD", "\xE6\x96\x87"}},
      {R"({"tokenizer_class": "BertTokenizer", "do_lower_case": false, "strip_accents": true})",
       {"Hello", "World", "\xE4\xB8\xAD", "\xE6\x96\x87"}},
      {R"({"tokenizer_class": "BertTokenizer", "do_lower_case": false,
           "tokenize_chinese_chars": false})",
       {"Hello", "W", "##\xC3\xB3r", "##ld", "\xE4\xB8\xAD", "##\xE6\x96\x87"}},
      // Agreeing with the normalizer: nothing changes.
      {R"({"tokenizer_class": "BertTokenizer", "do_lower_case": false})",
       {"Hello", "W", "##\xC3\xB3r", "##ld", "\xE4\xB8\xAD", "\xE6\x96\x87"}},
  };
  for (const auto& [config, tokens] : cases) {
    TempDir dir;
    fs::copy_file(mbert_dir() / "tokenizer.json", dir / "tokenizer.json");
    write_text(dir / "tokenizer_config.json", config);
    EXPECT_EQ(load_tokenizer(dir.path())->tokenize(text), tokens) << config;
  }
  // transformers fails on a null flag here (BertNormalizer takes no None): refused.
  TempDir null_flag;
  fs::copy_file(mbert_dir() / "tokenizer.json", null_flag / "tokenizer.json");
  write_text(null_flag / "tokenizer_config.json",
             R"({"tokenizer_class": "BertTokenizer", "do_lower_case": null})");
  EXPECT_NE(error_of([&] {
              load_tokenizer(null_flag.path());
            }).find("do_lower_case must be true or false with a tokenizer.json, got null"),
            std::string::npos);
}

}  // namespace
