// Tests for the NLI readers on small files written here: every layout, format detection, label
// normalisation, index/line bookkeeping, and every bad-row case (message carries file:line) both
// as an error and counted with skip_bad_rows.
#include "xlt/data/nli.h"

#include <gtest/gtest.h>

#include "common/test_env.h"
#include "xlt/core/error.h"

using namespace xlt::data;
using xlt::test::TempDir;
using xlt::test::throws_with;
using xlt::test::write_text;

namespace {

// The XNLI-1.0 header (19 columns), and a row builder that fills the columns we do not read.
const char* kXnliHeader =
    "language\tgold_label\tsentence1_binary_parse\tsentence2_binary_parse\tsentence1_parse\t"
    "sentence2_parse\tsentence1\tsentence2\tpromptID\tpairID\tgenre\tlabel1\tlabel2\tlabel3\t"
    "label4\tlabel5\tsentence1_tokenized\tsentence2_tokenized\tmatch\n";

std::string xnli_row(const std::string& lang, const std::string& gold, const std::string& s1,
                     const std::string& s2, const std::string& pair_id) {
  return lang + "\t" + gold + "\t(x)\t(y)\t(X)\t(Y)\t" + s1 + "\t" + s2 + "\t1\t" + pair_id +
         "\tfiction\t" + gold + "\t\t\t\t\t" + s1 + "\t" + s2 + "\tTrue\n";
}

ReadOptions skipping() {
  ReadOptions o;
  o.skip_bad_rows = true;
  return o;
}

}  // namespace

TEST(NliFormat, NamesRoundTripAndUnknownIsUsageError) {
  for (const auto& n : nli_format_names()) EXPECT_EQ(nli_format_name(parse_nli_format(n)), n);
  EXPECT_EQ(parse_nli_format("xnli"), NliFormat::kXnliTsv);
  EXPECT_EQ(parse_nli_format("mnli"), NliFormat::kMnliJsonl);
  EXPECT_THROW(parse_nli_format("tsv"), xlt::UsageError);
}

TEST(LabelSet, NliOrderIsHuggingFace) {
  auto l = LabelSet::nli();
  EXPECT_EQ(l.id("entailment"), 0);
  EXPECT_EQ(l.id("neutral"), 1);
  EXPECT_EQ(l.id("contradiction"), 2);
  EXPECT_EQ(l.id("Entailment"), kNoLabel);
  EXPECT_EQ(l.name(2), "contradiction");
  EXPECT_EQ(l.name(kNoLabel), "-");
}

TEST(Utf8, FindsFirstInvalidSequence) {
  EXPECT_EQ(find_invalid_utf8("plain"), std::string_view::npos);
  EXPECT_EQ(find_invalid_utf8("caf\xC3\xA9 \xE0\xA4\xB9 \xF0\x9F\x98\x80"), std::string_view::npos);
  EXPECT_EQ(find_invalid_utf8("ab\xFF"), 2u);
  EXPECT_EQ(find_invalid_utf8("a\xC0\xAF"), 1u);          // overlong '/'
  EXPECT_EQ(find_invalid_utf8("a\xED\xA0\x80"), 1u);      // surrogate U+D800
  EXPECT_EQ(find_invalid_utf8("a\xF4\x90\x80\x80"), 1u);  // above U+10FFFF
  EXPECT_EQ(find_invalid_utf8("a\xE0\xA4"), 1u);          // truncated
}

TEST(Utf8, ReadsLinesUpToALimitAndNamesTheBadLine) {
  TempDir dir;
  write_text(dir / "t.txt", "uno\r\ndos\n\ntr\xC3\xA9s\n");
  EXPECT_EQ(read_utf8_lines(dir / "t.txt"),
            (std::vector<std::string>{"uno", "dos", "", "tr\xC3\xA9s"}));
  EXPECT_EQ(read_utf8_lines(dir / "t.txt", 2), (std::vector<std::string>{"uno", "dos"}));
  EXPECT_TRUE(read_utf8_lines(dir / "t.txt", 0).empty());
  write_text(dir / "bad.txt", "ok\nab\xFF\n");
  // A bad line beyond the limit is never read.
  EXPECT_EQ(read_utf8_lines(dir / "bad.txt", 1), (std::vector<std::string>{"ok"}));
  try {
    read_utf8_lines(dir / "bad.txt");
    FAIL() << "expected a DataError";
  } catch (const xlt::DataError& e) {
    EXPECT_EQ(std::string(e.what()),
              (dir / "bad.txt").string() +
                  ":2: invalid UTF-8 at byte 2 of the line (byte 0xFF); the file must be UTF-8");
  }
  EXPECT_THROW(read_utf8_lines(dir.path()), xlt::IoError);
  EXPECT_THROW(read_utf8_lines(dir / "missing.txt"), xlt::IoError);
}

TEST(XtremeTsv, ReadsLabelsIndicesAndCrlf) {
  TempDir dir;
  write_text(dir / "dev-es.tsv",
             "P1\tH1\tentailment\r\nP2\tH2\tneutral\r\n\r\nP3\tH3\tcontradiction\r\n"
             "P4\tH4\tcontradictory\r\n");
  auto ds = read_nli_file(dir / "dev-es.tsv", "es");
  EXPECT_EQ(ds.format, NliFormat::kXtremeTsv);
  ASSERT_EQ(ds.size(), 4);
  EXPECT_EQ(ds.lang, "es");
  EXPECT_EQ(ds.examples[0].premise, "P1");
  EXPECT_EQ(ds.examples[0].hypothesis, "H1");
  EXPECT_EQ(ds.gold(), (std::vector<int>{0, 1, 2, 2}));
  // The blank line is not a record: indices stay 0..3, lines are physical.
  EXPECT_EQ(ds.examples[2].index, 2);
  EXPECT_EQ(ds.examples[2].line, 4);
  EXPECT_EQ(ds.examples[3].lang, "es");
  EXPECT_EQ(ds.label_counts(), (std::vector<int64_t>{1, 1, 2}));
  EXPECT_TRUE(ds.fully_labelled());
  EXPECT_EQ(ds.report.records, 4);
  EXPECT_EQ(ds.report.kept, 4);
}

TEST(XtremeTsv, TestFilesWithoutLabelsGiveMinusOne) {
  TempDir dir;
  write_text(dir / "test-hi.tsv", "P1\tH1\nP2\tH2\n");
  auto ds = read_nli_file(dir / "test-hi.tsv", "hi");
  ASSERT_EQ(ds.size(), 2);
  EXPECT_EQ(ds.examples[1].label, kNoLabel);
  EXPECT_FALSE(ds.fully_labelled());
}

TEST(XtremeTsv, OptionalHeaderIsSkipped) {
  TempDir dir;
  write_text(dir / "a.tsv", "premise\thypothesis\tlabel\nP\tH\tneutral\n");
  auto ds = read_nli_file(dir / "a.tsv", "en");
  ASSERT_EQ(ds.size(), 1);
  EXPECT_EQ(ds.examples[0].index, 0);
  EXPECT_EQ(ds.examples[0].line, 2);
}

TEST(XtremeTsv, EveryBadRowStopsWithFileAndLine) {
  TempDir dir;
  auto path = dir / "bad.tsv";
  auto check = [&](const std::string& second_row, const std::string& reason) {
    write_text(path, "P1\tH1\tentailment\n" + second_row + "\n");
    EXPECT_TRUE(throws_with<xlt::DataError>([&] { read_nli_file(path, "en"); },
                                            {path.string() + ":2: ", reason}));
  };
  check("P2\tH2", "expected 3 tab-separated columns");
  check("P2\tH2\tneutral\textra", "found 4");
  check("P2\tH2\tmaybe", "unknown label 'maybe'");
  check("P2\tH2\t", "empty label");
  check("P\xC3\x28\tH2\tneutral", "invalid UTF-8 at byte 2");
  check("  \tH2\tneutral", "empty premise");
  check("P2\t\tneutral", "empty hypothesis");
  // Unicode whitespace only (NBSP, ideographic space, line separator) is empty text too; a
  // zero-width joiner or a letter after the spaces is text.
  check("\xC2\xA0\tH3\tneutral", "empty premise");
  check("P3\t\xE3\x80\x80 \xE2\x80\xA8\tneutral", "empty hypothesis");
  write_text(path, "\xC2\xA0x\t\xE2\x80\x8D\tneutral\n");
  EXPECT_EQ(read_nli_file(path, "en", ReadOptions()).size(), 1);
}

TEST(XtremeTsv, SkipBadRowsCountsPerReason) {
  TempDir dir;
  auto path = dir / "bad.tsv";
  write_text(path,
             "P1\tH1\tentailment\n"
             "P2\tH2\n"              // column_count
             "P3\tH3\tmaybe\n"       // unknown_label
             "P\xFF\tH4\tneutral\n"  // invalid_utf8
             "P5\t \tneutral\n"      // empty_text
             "P6\tH6\tcontradiction\n"
             "P7\tH7\tneutral\tx\n");  // column_count
  auto ds = read_nli_file(path, "en", skipping());
  ASSERT_EQ(ds.size(), 2);
  // Bad rows still take an index, so index keeps naming the file's record.
  EXPECT_EQ(ds.examples[1].index, 5);
  EXPECT_EQ(ds.examples[1].premise, "P6");
  EXPECT_EQ(ds.report.records, 7);
  EXPECT_EQ(ds.report.bad_total(), 5);
  EXPECT_EQ(ds.report.bad_rows.at("column_count"), 2);
  EXPECT_EQ(ds.report.bad_rows.at("unknown_label"), 1);
  EXPECT_EQ(ds.report.bad_rows.at("invalid_utf8"), 1);
  EXPECT_EQ(ds.report.bad_rows.at("empty_text"), 1);
  ASSERT_EQ(ds.report.bad_row_messages.size(), 5u);
  EXPECT_EQ(ds.report.bad_row_messages[0].rfind(path.string() + ":2: ", 0), 0u);
  EXPECT_NE(ds.report.summary().find("5 bad rows skipped"), std::string::npos);
}

TEST(NliReaders, ZeroUsableRowsIsAnError) {
  TempDir dir;
  write_text(dir / "empty.tsv", "");
  EXPECT_TRUE(throws_with<xlt::DataError>([&] { read_nli_file(dir / "empty.tsv", "en"); },
                                          {"no usable rows"}));
  write_text(dir / "allbad.tsv", "P\tH\tmaybe\n");
  EXPECT_TRUE(
      throws_with<xlt::DataError>([&] { read_nli_file(dir / "allbad.tsv", "en", skipping()); },
                                  {"no usable rows", "unknown_label 1"}));
}

TEST(XnliTsv, LocatesColumnsByNameAndFiltersLanguage) {
  TempDir dir;
  auto path = dir / "xnli.dev.tsv";
  write_text(path, std::string(kXnliHeader) + xnli_row("ar", "neutral", "Ar1", "Ar2", "1") +
                       xnli_row("en", "neutral", "En1", "En2", "1") +
                       xnli_row("en", "-", "En3", "En4", "2") +
                       xnli_row("en", "contradiction", "En5 \"q\"", "En6", "3") +
                       xnli_row("es", "contradiction", "Es5", "Es6", "3"));
  EXPECT_EQ(detect_nli_format(path), NliFormat::kXnliTsv);
  EXPECT_TRUE(has_language_column(path));
  auto en = read_nli_file(path, "en");
  ASSERT_EQ(en.size(), 2);
  EXPECT_EQ(en.examples[0].premise, "En1");
  EXPECT_EQ(en.examples[0].index, 1);  // data row 1 of the file (header excluded)
  EXPECT_EQ(en.examples[0].line, 3);
  EXPECT_EQ(en.examples[0].genre, "fiction");
  EXPECT_EQ(en.examples[1].pair_id, "3");
  EXPECT_EQ(en.examples[1].premise, "En5 \"q\"");  // no CSV quoting in XNLI TSV
  EXPECT_EQ(en.gold(), (std::vector<int>{1, 2}));
  EXPECT_EQ(en.report.no_gold_label, 1);
  EXPECT_EQ(en.report.other_language, 2);

  auto sets = read_nli_by_language(path, {"es", "en"});
  ASSERT_EQ(sets.size(), 2u);
  EXPECT_EQ(sets[0].lang, "es");
  EXPECT_EQ(sets[1].lang, "en");
  EXPECT_EQ(sets[0].examples[0].pair_id, sets[1].examples[1].pair_id);
  auto all = read_nli_by_language(path, {});
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].lang, "ar");
  EXPECT_TRUE(throws_with<xlt::DataError>(
      [&] {
        read_nli_by_language(path, {"en", "fr"});
      },
      {"language fr not found", "languages present: ar, en, es"}));
}

TEST(XnliTsv, MultiNliTxtWithoutLanguageColumn) {
  TempDir dir;
  auto path = dir / "multinli_1.0_dev_matched.txt";
  write_text(path,
             "gold_label\tsentence1_binary_parse\tsentence1\tsentence2\tpairID\tgenre\n"
             "neutral\t(x)\tA man.\tA person.\t63735n\tslate\n"
             "-\t(x)\tB.\tC.\t1n\tslate\n");
  auto ds = read_nli_file(path, "en");
  ASSERT_EQ(ds.size(), 1);
  EXPECT_EQ(ds.examples[0].genre, "slate");
  EXPECT_EQ(ds.examples[0].pair_id, "63735n");
  EXPECT_EQ(ds.report.no_gold_label, 1);
  EXPECT_TRUE(throws_with<xlt::DataError>([&] { read_nli_by_language(path, {"en"}); },
                                          {"has no language column"}));
}

TEST(XnliTsv, BadHeaderAndBadRows) {
  TempDir dir;
  auto path = dir / "x.tsv";
  write_text(path, "language\tgold_label\tsentence1\n");
  auto opts = ReadOptions();
  opts.format = NliFormat::kXnliTsv;
  EXPECT_TRUE(throws_with<xlt::DataError>([&] { read_nli_file(path, "en", opts); },
                                          {path.string() + ":1:",
                                           "expected tab-separated columns gold_label, sentence1, "
                                           "sentence2"}));
  write_text(path, std::string(kXnliHeader) + xnli_row("en", "neutral", "A", "B", "1") +
                       "en\tneutral\tonly three\n" + xnli_row("en", "entails", "A", "B", "2"));
  EXPECT_TRUE(throws_with<xlt::DataError>(
      [&] { read_nli_file(path, "en"); },
      {path.string() + ":3: expected 19 tab-separated columns", "found 3"}));
  auto ds = read_nli_file(path, "en", skipping());
  EXPECT_EQ(ds.size(), 1);
  EXPECT_EQ(ds.report.bad_rows.at("column_count"), 1);
  EXPECT_EQ(ds.report.bad_rows.at("unknown_label"), 1);
  EXPECT_EQ(ds.report.bad_row_messages[1], path.string() +
                                               ":4: unknown label 'entails' (expected "
                                               "entailment, neutral, contradiction or '-')");
}

TEST(MnliJsonl, ReadsGoldLabelGenreAndSkipsDash) {
  TempDir dir;
  auto path = dir / "multinli_1.0_dev_matched.jsonl";
  write_text(path,
             "{\"annotator_labels\": [\"neutral\"], \"genre\": \"government\", \"gold_label\": "
             "\"neutral\", \"pairID\": \"31193n\", \"promptID\": \"31193\", \"sentence1\": "
             "\"Conceptually cream skimming...\", \"sentence2\": \"Product and geography.\"}\n"
             "{\"gold_label\": \"-\", \"sentence1\": \"a\", \"sentence2\": \"b\"}\n"
             "\n"
             "{\"gold_label\": \"entailment\", \"sentence1\": \"c\", \"sentence2\": \"d\", "
             "\"genre\": \"travel\"}\r\n");
  EXPECT_EQ(detect_nli_format(path), NliFormat::kMnliJsonl);
  auto ds = read_nli_file(path, "en");
  ASSERT_EQ(ds.size(), 2);
  EXPECT_EQ(ds.examples[0].genre, "government");
  EXPECT_EQ(ds.examples[0].pair_id, "31193n");
  EXPECT_EQ(ds.examples[0].label, 1);
  EXPECT_EQ(ds.examples[1].label, 0);
  EXPECT_EQ(ds.examples[1].index, 2);
  EXPECT_EQ(ds.examples[1].line, 4);
  EXPECT_EQ(ds.report.no_gold_label, 1);
}

TEST(MnliJsonl, BadRows) {
  TempDir dir;
  auto path = dir / "m.jsonl";
  auto ok =
      std::string("{\"gold_label\": \"neutral\", \"sentence1\": \"a\", \"sentence2\": \"b\"}\n");
  auto check = [&](const std::string& row, const std::string& reason) {
    write_text(path, ok + row + "\n");
    auto opts = ReadOptions();
    opts.format = NliFormat::kMnliJsonl;
    EXPECT_TRUE(throws_with<xlt::DataError>([&] { read_nli_file(path, "en", opts); },
                                            {path.string() + ":2: ", reason}));
  };
  check("{\"gold_label\": \"neutral\", \"sentence1\": \"a\"", "invalid JSON");
  // A broken first line under format detection is invalid JSON too, not a file "without NLI
  // fields".
  write_text(path, "{\"premise\": \"a\", \"hypothesis\": \"b\", \"label\": 0\n" + ok);
  EXPECT_TRUE(throws_with<xlt::DataError>([&] { read_nli_file(path, "en", ReadOptions()); },
                                          {path.string() + ":1: invalid JSON (byte "}));
  check("{\"gold_label\": \"neutral\", \"sentence1\": \"a\"}", "missing field \"sentence2\"");
  check("{\"gold_label\": \"neutral\", \"sentence1\": 3, \"sentence2\": \"b\"}",
        "field \"sentence1\" is a number, expected a string");
  check("{\"gold_label\": \"yes\", \"sentence1\": \"a\", \"sentence2\": \"b\"}",
        "unknown label 'yes'");
  check("{\"gold_label\": \"neutral\", \"sentence1\": \"\", \"sentence2\": \"b\"}",
        "empty premise");
  check("{\"gold_label\": \"neutral\", \"sentence1\": \"\xC3\", \"sentence2\": \"b\"}",
        "invalid UTF-8");
  check("[1, 2]", "expected a JSON object, found a array");
}

TEST(HfJsonl, ReadsIntegerLabelsAndMinusOne) {
  TempDir dir;
  auto path = dir / "train.jsonl";
  write_text(path,
             "{\"premise\": \"p0\", \"hypothesis\": \"h0\", \"label\": 2}\n"
             "{\"premise\": \"p1\", \"hypothesis\": \"h1\", \"label\": -1, \"idx\": 5}\n"
             "{\"premise\": \"p2\", \"hypothesis\": \"h2\"}\n"
             "{\"premise\": \"p3\", \"hypothesis\": \"h3\", \"label\": \"neutral\"}\n");
  EXPECT_EQ(detect_nli_format(path), NliFormat::kHfJsonl);
  auto ds = read_nli_file(path, "en");
  EXPECT_EQ(ds.gold(), (std::vector<int>{2, kNoLabel, kNoLabel, 1}));
  write_text(path, "{\"premise\": \"p0\", \"hypothesis\": \"h0\", \"label\": 3}\n");
  EXPECT_TRUE(
      throws_with<xlt::DataError>([&] { read_nli_file(path, "en"); },
                                  {path.string() + ":1: unknown label 3 (expected 0..2 or -1)"}));
  write_text(path, "{\"premise\": \"p0\", \"hypothesis\": \"h0\", \"label\": 0.5}\n");
  EXPECT_TRUE(
      throws_with<xlt::DataError>([&] { read_nli_file(path, "en"); }, {"expected an integer"}));
  // Above INT64_MAX: not wrapped round to -1 (unlabelled).
  write_text(path,
             "{\"premise\": \"p0\", \"hypothesis\": \"h0\", \"label\": 18446744073709551615}\n");
  EXPECT_TRUE(
      throws_with<xlt::DataError>([&] { read_nli_file(path, "en"); },
                                  {path.string() + ":1: unknown label 18446744073709551615"}));
}

// A language value must be a language code: an empty one is a bad row, not a language named "".
// A JSONL file is split by language when its first object has "language"; a later object that
// names another language is not counted as the file's.
TEST(NliReaders, LanguageValuesAreCheckedRowByRow) {
  TempDir dir;
  auto tsv = dir / "x.tsv";
  write_text(tsv, std::string(kXnliHeader) + xnli_row("en", "neutral", "En1", "En2", "1") +
                      xnli_row("", "neutral", "X1", "X2", "2") +
                      xnli_row("es", "neutral", "Es1", "Es2", "1"));
  EXPECT_TRUE(throws_with<xlt::DataError>([&] { read_nli_by_language(tsv, {}); },
                                          {tsv.string() + ":3: missing language"}));
  ReadOptions skip;
  skip.skip_bad_rows = true;
  auto sets = read_nli_by_language(tsv, {}, skip);
  ASSERT_EQ(sets.size(), 2u);
  EXPECT_EQ(sets[0].lang, "en");
  EXPECT_EQ(sets[1].lang, "es");
  EXPECT_EQ(sets[0].report.bad_total(), 1);

  auto jsonl = dir / "mixed.jsonl";
  write_text(jsonl,
             "{\"premise\": \"a\", \"hypothesis\": \"b\", \"label\": 0}\n"
             "{\"premise\": \"c\", \"hypothesis\": \"d\", \"label\": 1, \"language\": \"de\"}\n"
             "{\"premise\": \"e\", \"hypothesis\": \"f\", \"label\": 1, \"language\": \"en\"}\n");
  EXPECT_TRUE(throws_with<xlt::DataError>(
      [&] { read_nli_file(jsonl, "en"); },
      {jsonl.string() + ":2: language 'de', but the file is read as 'en'"}));
  auto en = read_nli_file(jsonl, "en", skip);
  EXPECT_EQ(en.size(), 2);  // the first object and the one that says en
  EXPECT_EQ(en.report.bad_total(), 1);

  write_text(jsonl,
             "{\"premise\": \"a\", \"hypothesis\": \"b\", \"label\": 0, \"language\": \"en\"}\n"
             "{\"premise\": \"c\", \"hypothesis\": \"d\", \"label\": 1, \"language\": \"\"}\n");
  EXPECT_TRUE(throws_with<xlt::DataError>([&] { read_nli_by_language(jsonl, {}); },
                                          {jsonl.string() + ":2: missing language"}));
}

// Each language's report counts the rows of every other language, the later ones included.
TEST(NliReaders, OtherLanguageCountsForEveryLanguage) {
  TempDir dir;
  auto tsv = dir / "x.tsv";
  write_text(
      tsv, std::string(kXnliHeader) + xnli_row("en", "neutral", "a", "b", "1") +
               xnli_row("en", "neutral", "a", "b", "2") + xnli_row("es", "neutral", "a", "b", "1") +
               xnli_row("es", "neutral", "a", "b", "2") + xnli_row("fr", "neutral", "a", "b", "1"));
  auto sets = read_nli_by_language(tsv, {});
  ASSERT_EQ(sets.size(), 3u);
  EXPECT_EQ(sets[0].report.other_language, 3);
  EXPECT_EQ(sets[1].report.other_language, 3);
  EXPECT_EQ(sets[2].report.other_language, 4);
}

TEST(HfJsonl, JsonWithoutNliFieldsNamesExpectedKeys) {
  TempDir dir;
  auto path = dir / "qa.jsonl";
  write_text(path, "{\"question\": \"q\", \"answer\": \"a\"}\n");
  EXPECT_TRUE(throws_with<xlt::DataError>(
      [&] { read_nli_file(path, "en"); },
      {path.string() + ":1:", "\"premise\", \"hypothesis\", \"label\""}));
}

TEST(HfCsv, ReadsQuotedFieldsWithCommasQuotesAndNewlines) {
  TempDir dir;
  auto path = dir / "train.csv";
  write_text(path,
             "idx,premise,hypothesis,label\r\n"
             "0,\"A, b\",\"He said \"\"hi\"\"\",0\r\n"
             "1,\"two\nlines\",plain,1\r\n"
             "2,x,y,-1\r\n"
             "3,x,y,contradiction\r\n");
  EXPECT_EQ(detect_nli_format(path), NliFormat::kHfCsv);
  auto ds = read_nli_file(path, "en");
  ASSERT_EQ(ds.size(), 4);
  EXPECT_EQ(ds.examples[0].premise, "A, b");
  EXPECT_EQ(ds.examples[0].hypothesis, "He said \"hi\"");
  EXPECT_EQ(ds.examples[1].premise, "two\nlines");
  EXPECT_EQ(ds.examples[2].line, 5);  // the quoted newline takes a physical line
  EXPECT_EQ(ds.examples[2].index, 2);
  EXPECT_EQ(ds.gold(), (std::vector<int>{0, 1, kNoLabel, 2}));
}

TEST(HfCsv, WrongHeaderNamesExpectedColumns) {
  TempDir dir;
  auto path = dir / "mnli_train.csv";
  write_text(path, "Question,Answer,Origin\n\"For the statement...\",entailment,mnli\n");
  EXPECT_TRUE(throws_with<xlt::DataError>(
      [&] { read_nli_file(path, "en"); },
      {path.string() + ":1: not a Hugging Face NLI CSV", "premise, hypothesis, label",
       "found: Question, Answer, Origin"}));
}

// A stray comma in a text moves the fields after it. With the language last it is read from the
// row's end (the row stays a bad row of its own language, in its place); with the language after
// a text it cannot be trusted ("neutral" passed as a language code and the row vanished as a
// row of a language nobody asked for): a bad row of every language read.
TEST(HfCsv, ARowWhoseColumnsMovedKeepsOnlyATrustworthyLanguage) {
  TempDir dir;
  auto last = dir / "last.csv";
  write_text(last,
             "premise,hypothesis,label,language\n"
             "a,b,0,en\n"
             "c,d,1,es\n"
             "e, f,g,neutral,es\n"
             "h,i,2,en\n");
  auto sets = read_nli_by_language(last, {"en", "es"}, skipping());
  ASSERT_EQ(sets.size(), 2u);
  EXPECT_EQ(sets[0].report.bad_total(), 0);
  EXPECT_EQ(sets[1].report.bad_rows.at("column_count"), 1);
  EXPECT_EQ(sets[1].report.bad_without_language, 0);
  EXPECT_EQ(sets[1].bad_positions, (std::vector<int64_t>{1}));

  auto middle = dir / "middle.csv";
  write_text(middle,
             "premise,language,hypothesis,label\n"
             "a,en,b,0\n"
             "c,es,d,1\n"
             "e,neutral,es,g,1\n"
             "h,en,i,2\n");
  sets = read_nli_by_language(middle, {"en", "es"}, skipping());
  ASSERT_EQ(sets.size(), 2u);
  for (const auto& d : sets) {
    EXPECT_EQ(d.report.bad_rows.at("column_count"), 1) << d.lang;
    EXPECT_EQ(d.report.bad_without_language, 1) << d.lang;
    EXPECT_EQ(d.report.other_language, d.lang == "en" ? 1 : 2) << d.lang;
    EXPECT_TRUE(d.bad_positions.empty()) << d.lang;
  }

  // With the language first (XNLI-1.0), a moved text cannot move it: the row is es's.
  auto tsv = dir / "l.tsv";
  write_text(tsv,
             "language\tgold_label\tsentence1\tsentence2\tpairID\n"
             "en\tneutral\ta\tb\t1\n"
             "es\tneutral\tc\td\t1\n"
             "es\tneutral\te\tf\tg\t2\n");
  sets = read_nli_by_language(tsv, {"en", "es"}, skipping());
  EXPECT_EQ(sets[0].report.bad_total(), 0);
  EXPECT_EQ(sets[1].report.bad_rows.at("column_count"), 1);
  EXPECT_EQ(sets[1].bad_positions, (std::vector<int64_t>{1}));
}

TEST(HfCsv, BadRowsAndUnterminatedQuote) {
  TempDir dir;
  auto path = dir / "b.csv";
  write_text(path,
             "premise,hypothesis,label\n"
             "a,b,0\n"
             "a,b\n"         // column_count
             "\"a\"x,b,1\n"  // malformed quoting
             "a,b,7\n"       // unknown_label
             ",b,1\n"        // empty_text
             "c,d,2\n");
  EXPECT_TRUE(
      throws_with<xlt::DataError>([&] { read_nli_file(path, "en"); },
                                  {path.string() + ":3: expected 3 comma-separated columns"}));
  auto ds = read_nli_file(path, "en", skipping());
  EXPECT_EQ(ds.size(), 2);
  EXPECT_EQ(ds.examples[1].index, 5);
  EXPECT_EQ(ds.report.bad_rows.at("column_count"), 1);
  EXPECT_EQ(ds.report.bad_rows.at("malformed"), 1);
  EXPECT_EQ(ds.report.bad_rows.at("unknown_label"), 1);
  EXPECT_EQ(ds.report.bad_rows.at("empty_text"), 1);
  EXPECT_EQ(ds.report.bad_row_messages[1],
            path.string() + ":4: bad CSV quoting: text after the closing quote of a quoted field");

  write_text(path, "premise,hypothesis,label\na,b,0\n\"open,b,1\nc,d,2\n");
  EXPECT_TRUE(throws_with<xlt::DataError>([&] { read_nli_file(path, "en", skipping()); },
                                          {path.string() + ":3: unterminated quoted field"}));
}

TEST(NliReaders, ExplicitFormatOverridesDetection) {
  TempDir dir;
  auto path = dir / "data.txt";
  write_text(path, "{\"premise\": \"p\", \"hypothesis\": \"h\", \"label\": 0}\n");
  ReadOptions o;
  o.format = NliFormat::kXtremeTsv;
  // Read as XTREME, the JSON line is one column.
  EXPECT_TRUE(
      throws_with<xlt::DataError>([&] { read_nli_file(path, "en", o); }, {":1: expected 2 or 3"}));
  o.format = NliFormat::kHfJsonl;
  EXPECT_EQ(read_nli_file(path, "en", o).size(), 1);
}

TEST(NliReaders, MissingFileIsIoError) {
  EXPECT_THROW(read_nli_file("/nonexistent/dev-en.tsv", "en"), xlt::IoError);
}
