// Readers of parallel sentences (language-header TSV, line-aligned files as Tatoeba/LASER) and
// of sentence lists, good and bad inputs (errors name file:line), and the shared special-token
// policy of tokens.h.
#include <gtest/gtest.h>

#include "common/test_env.h"
#include "xlt/analysis/parallel_text.h"
#include "xlt/analysis/tokens.h"
#include "xlt/core/error.h"

namespace xlt::test {
namespace {

namespace fs = std::filesystem;
using namespace xlt::analysis;

TEST(ParallelTsv, ReadsColumnsBySelectedLanguages) {
  TempDir tmp;
  write_text(tmp / "p.tsv", "en\tes\tfr\r\nA\tB\tC\n\nD\tE\tF\nG\tH\tI\n");
  const auto all = read_parallel_tsv(tmp / "p.tsv");
  EXPECT_EQ(all.langs, (std::vector<std::string>{"en", "es", "fr"}));
  ASSERT_EQ(all.rows(), 3u);  // the blank line is skipped, CR dropped
  EXPECT_EQ(all.columns[2], (std::vector<std::string>{"C", "F", "I"}));
  ParallelReadOptions o;
  o.langs = {"fr", "en"};
  o.max_rows = 2;
  const auto some = read_parallel_tsv(tmp / "p.tsv", o);
  EXPECT_EQ(some.langs, (std::vector<std::string>{"fr", "en"}));
  EXPECT_EQ(some.columns[0], (std::vector<std::string>{"C", "F"}));
  EXPECT_EQ(some.columns[1], (std::vector<std::string>{"A", "D"}));
  o.langs = {"en", "hi"};
  EXPECT_TRUE(
      throws_with<DataError>([&] { read_parallel_tsv(tmp / "p.tsv", o); }, {"no language 'hi'"}));
  o.ignore_missing = true;
  EXPECT_TRUE(throws_with<DataError>([&] { read_parallel_tsv(tmp / "p.tsv", o); },
                                     {"at least 2 languages"}));
  o.langs = {"en", "hi", "es"};
  EXPECT_EQ(read_parallel_tsv(tmp / "p.tsv", o).langs, (std::vector<std::string>{"en", "es"}));
}

TEST(ParallelTsv, BadRowsAndHeadersNameFileAndLine) {
  TempDir tmp;
  const fs::path p = tmp / "bad.tsv";
  write_text(p, "en\tes\nA\tB\nC\n");
  EXPECT_TRUE(throws_with<DataError>([&] { read_parallel_tsv(p); },
                                     {p.string() + ":3:", "1 tab-separated", "2"}));
  write_text(p, "en\ten\nA\tB\n");
  EXPECT_TRUE(throws_with<DataError>([&] { read_parallel_tsv(p); },
                                     {p.string() + ":1:", "'en' appears twice"}));
  write_text(p, "en\t\tfr\nA\tB\tC\n");
  EXPECT_TRUE(throws_with<DataError>([&] { read_parallel_tsv(p); },
                                     {p.string() + ":1:", "column 2 is empty"}));
  write_text(p, "");
  EXPECT_TRUE(throws_with<DataError>([&] { read_parallel_tsv(p); }, {"header row"}));
  EXPECT_THROW(read_parallel_tsv(tmp / "missing.tsv"), IoError);
}

// A blank line holds its row's place (the files stay aligned) and the row is left out: an empty
// "translation" used to be embedded as special tokens and counted in every retrieval score.
TEST(ParallelFiles, LineAlignedFilesLeaveOutBlankRowsAndCheckCounts) {
  TempDir tmp;
  write_text(tmp / "a.en", "one\n\nthree\n");
  write_text(tmp / "a.es", "uno\ndos\ntres\n");
  const auto p = read_parallel_files({{"en", tmp / "a.en"}, {"es", tmp / "a.es"}});
  ASSERT_EQ(p.rows(), 2u);
  EXPECT_EQ(p.columns[0], (std::vector<std::string>{"one", "three"}));
  EXPECT_EQ(p.columns[1], (std::vector<std::string>{"uno", "tres"}));
  EXPECT_EQ(p.blank_rows, 1);
  write_text(tmp / "t.tsv", "en\tes\nA\tB\n \tD\nE\tF\n");
  const auto t = read_parallel_tsv(tmp / "t.tsv");
  EXPECT_EQ(t.columns[1], (std::vector<std::string>{"B", "F"}));
  EXPECT_EQ(t.blank_rows, 1);
  write_text(tmp / "b.es", "uno\ndos\n");
  EXPECT_TRUE(throws_with<DataError>(
      [&] {
        read_parallel_files({{"en", tmp / "a.en"}, {"es", tmp / "b.es"}});
      },
      {(tmp / "b.es").string() + ":3:", "expected 3 lines"}));
  EXPECT_TRUE(throws_with<DataError>(
      [&] {
        read_parallel_files({{"en", tmp / "a.en"}, {"en", tmp / "a.es"}});
      },
      {"'en' given twice"}));
}

TEST(ParallelInputs, SpecsChooseTheFormat) {
  EXPECT_EQ(split_lang_path("en=x/y.txt").first, "en");
  EXPECT_EQ(split_lang_path("en=x/y.txt").second, fs::path("x/y.txt"));
  EXPECT_EQ(split_lang_path("dir/a=b.txt").first, "");  // not a language code
  EXPECT_EQ(split_lang_path("plain.tsv").second, fs::path("plain.tsv"));
  TempDir tmp;
  write_text(tmp / "p.tsv", "en\tes\nA\tB\n");
  EXPECT_EQ(read_parallel_inputs({(tmp / "p.tsv").string()}).langs.size(), 2u);
  EXPECT_THROW(read_parallel_inputs({(tmp / "p.tsv").string(), (tmp / "p.tsv").string()}),
               UsageError);
}

TEST(ParallelFiles, TatoebaLaserPairs) {
  const fs::path dir = shared_dir() / "data" / "tatoeba_laser_v1";
  XLT_REQUIRE_PATH(dir / "tatoeba.spa-eng.spa");
  ParallelReadOptions o;
  o.max_rows = 50;
  const auto p = read_parallel_inputs({"en=" + (dir / "tatoeba.spa-eng.eng").string(),
                                       "es=" + (dir / "tatoeba.spa-eng.spa").string()},
                                      o);
  EXPECT_EQ(p.langs, (std::vector<std::string>{"en", "es"}));
  EXPECT_EQ(p.rows(), 50u);
  const auto full = read_parallel_files(
      {{"fr", dir / "tatoeba.fra-eng.fra"}, {"en", dir / "tatoeba.fra-eng.eng"}});
  EXPECT_EQ(full.rows(), 1000u);
  for (const auto& s : full.columns[0]) EXPECT_FALSE(s.empty());
}

TEST(SentenceFiles, PlainAndHeaderFormats) {
  TempDir tmp;
  write_text(tmp / "plain.txt", "Hello there.\n\nSecond line.\n");
  write_text(tmp / "s.tsv", "sentence\tlang\nHola.\tes\nSalut.\tfr\n");
  write_text(tmp / "ids.tsv", "id\tsentence\tlang\n7\tHola.\tes\n8\tSalut.\tfr\n");
  const auto list =
      read_sentence_inputs({"en=" + (tmp / "plain.txt").string(), (tmp / "s.tsv").string()});
  ASSERT_EQ(list.records.size(), 4u);
  EXPECT_EQ(list.records[0].sentence, "Hello there.");
  EXPECT_EQ(list.records[0].lang, "en");
  EXPECT_EQ(list.records[1].line, 3);  // the blank line 2 is skipped, lines still counted
  EXPECT_EQ(list.records[2].lang, "es");
  EXPECT_EQ(list.records[3].sentence, "Salut.");
  EXPECT_EQ(list.records[3].line, 3);
  EXPECT_TRUE(list.extra_columns.empty());
  // Extra metadata columns must be the same in every input that has some; an input without
  // (plain text) gets empty values, whichever comes first.
  for (const bool plain_first : {true, false}) {
    std::vector<std::string> specs = {"en=" + (tmp / "plain.txt").string(),
                                      (tmp / "ids.tsv").string()};
    if (!plain_first) std::swap(specs[0], specs[1]);
    const auto mixed = read_sentence_inputs(specs);
    EXPECT_EQ(mixed.extra_columns, std::vector<std::string>{"id"});
    ASSERT_EQ(mixed.records.size(), 4u);
    EXPECT_EQ(mixed.records[plain_first ? 0 : 2].extra, std::vector<std::string>{""});
    EXPECT_EQ(mixed.records[plain_first ? 2 : 0].extra, std::vector<std::string>{"7"});
  }
  write_text(tmp / "tags.tsv", "tag\tsentence\tlang\nx\tHola.\tes\n");
  EXPECT_TRUE(throws_with<DataError>(
      [&] {
        read_sentence_inputs({(tmp / "ids.tsv").string(), (tmp / "tags.tsv").string()});
      },
      {(tmp / "tags.tsv").string() + ":1:", "extra metadata columns"}));
  // Columns metadata.tsv writes itself are refused, not written twice.
  write_text(tmp / "own.tsv", "sentence\tindex\nHola.\t3\n");
  EXPECT_TRUE(throws_with<DataError>(
      [&] { read_sentence_inputs({"es=" + (tmp / "own.tsv").string()}); },
      {(tmp / "own.tsv").string() + ":1:", "column 'index' is one xlt writes itself"}));

  SentenceList only;
  read_sentence_file(tmp / "ids.tsv", "", only);
  EXPECT_EQ(only.extra_columns, std::vector<std::string>{"id"});
  EXPECT_EQ(only.records[1].extra, std::vector<std::string>{"8"});

  write_text(tmp / "bad.tsv", "sentence\tlang\nA\ten\nB\n");
  EXPECT_TRUE(throws_with<DataError>([&] { read_sentence_inputs({(tmp / "bad.tsv").string()}); },
                                     {(tmp / "bad.tsv").string() + ":3:", "expected 2"}));
  write_text(tmp / "empty.txt", "\n\n");
  EXPECT_TRUE(throws_with<DataError>([&] { read_sentence_inputs({(tmp / "empty.txt").string()}); },
                                     {"no sentences"}));
  // A TSV whose column is not called `sentence` is not embedded row by row as plain text.
  write_text(tmp / "text.tsv", "text\tlang\nHola.\tes\n");
  EXPECT_TRUE(throws_with<DataError>([&] { read_sentence_inputs({(tmp / "text.tsv").string()}); },
                                     {(tmp / "text.tsv").string() + ":1:", "`sentence` column"}));
  // A byte-order mark before the header is not part of the column name.
  write_text(tmp / "bom.tsv", "\xEF\xBB\xBFsentence\tlang\nHola.\tes\n");
  const SentenceList bom = read_sentence_inputs({(tmp / "bom.tsv").string()});
  ASSERT_EQ(bom.records.size(), 1u);
  EXPECT_EQ(bom.records[0].sentence, "Hola.");
  EXPECT_EQ(bom.records[0].lang, "es");
}

text::Encoding encoding(const std::vector<int32_t>& special, const std::vector<int32_t>& mask) {
  text::Encoding e;
  for (size_t i = 0; i < special.size(); ++i) {
    e.ids.push_back(static_cast<text::TokenId>(i));
    e.tokens.push_back("t" + std::to_string(i));
  }
  e.special_tokens_mask = special;
  e.attention_mask = mask;
  return e;
}

TEST(SpecialTokenPolicy, OnePolicyForPoolingAndAttention) {
  // [CLS] a b [SEP] [PAD]
  const auto e = encoding({1, 0, 0, 1, 1}, {1, 1, 1, 1, 0});
  EXPECT_EQ(special_flags(e), (std::vector<uint8_t>{1, 0, 0, 1, 1}));
  EXPECT_EQ(kept_positions(e, SpecialTokenPolicy::kExclude), (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(kept_positions(e, SpecialTokenPolicy::kKeep), (std::vector<int64_t>{0, 1, 2, 3}));
  EXPECT_EQ(kept_positions(e, SpecialTokenPolicy::kMark), (std::vector<int64_t>{0, 1, 2, 3}));
  EXPECT_EQ(pooling_weights(e, Pooling::kMean, SpecialTokenPolicy::kExclude),
            (std::vector<float>{0, 0.5f, 0.5f, 0, 0}));
  EXPECT_EQ(pooling_weights(e, Pooling::kMean, SpecialTokenPolicy::kKeep),
            (std::vector<float>{0.25f, 0.25f, 0.25f, 0.25f, 0}));
  EXPECT_EQ(pooling_weights(e, Pooling::kCls, SpecialTokenPolicy::kExclude),
            (std::vector<float>{1, 0, 0, 0, 0}));
  // An empty sentence is only template tokens: excluding them would leave nothing.
  const auto empty = encoding({1, 1}, {1, 1});
  EXPECT_EQ(kept_positions(empty, SpecialTokenPolicy::kExclude), (std::vector<int64_t>{0, 1}));
  EXPECT_EQ(parse_special_policy("mark"), SpecialTokenPolicy::kMark);
  EXPECT_THROW(parse_special_policy("drop"), UsageError);
  EXPECT_EQ(parse_pooling("cls"), Pooling::kCls);
  EXPECT_THROW(parse_pooling("max"), UsageError);
}

}  // namespace
}  // namespace xlt::test
