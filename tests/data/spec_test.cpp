// Tests for --data/--langs parsing, per-language dataset assembly with its error messages,
// parallelism checks and seeded subsampling that keeps parallel languages aligned.
#include "xlt/data/spec.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <sstream>

#include "common/test_env.h"
#include "xlt/core/error.h"
#include "xlt/data/random.h"

using namespace xlt::data;
using xlt::test::TempDir;
using xlt::test::write_text;

namespace {
template <typename E, typename Fn>
std::string error_of(Fn fn) {
  try {
    fn();
  } catch (const E& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected exception";
  return "";
}

std::string xnli_file(const std::vector<std::string>& langs, int rows) {
  std::string s = "language\tgold_label\tsentence1\tsentence2\tpairID\n";
  const char* labels[] = {"entailment", "neutral", "contradiction"};
  for (const auto& l : langs)
    for (int i = 0; i < rows; ++i)
      s += l + "\t" + labels[i % 3] + "\t" + l + " premise " + std::to_string(i) + "\t" + l +
           " hyp\t" + std::to_string(100 + i) + "\n";
  return s;
}

std::string xtreme_file(const std::string& lang, int rows) {
  std::string s;
  const char* labels[] = {"entailment", "neutral", "contradiction"};
  for (int i = 0; i < rows; ++i)
    s += lang + " p" + std::to_string(i) + "\t" + lang + " h\t" + labels[i % 3] + "\n";
  return s;
}
}  // namespace

TEST(LangList, ParsesCommaListsAndRejectsBadItems) {
  EXPECT_EQ(parse_lang_list("en, es,fr"), (std::vector<std::string>{"en", "es", "fr"}));
  EXPECT_EQ(parse_lang_list(std::vector<std::string>{"en,es", "hi"}),
            (std::vector<std::string>{"en", "es", "hi"}));
  EXPECT_TRUE(parse_lang_list("").empty());
  EXPECT_NE(error_of<xlt::UsageError>([] { parse_lang_list("en,,es"); }).find("empty language"),
            std::string::npos);
  EXPECT_NE(error_of<xlt::UsageError>([] {
              parse_lang_list("en,es,en");
            }).find("language 'en' given twice"),
            std::string::npos);
  EXPECT_NE(error_of<xlt::UsageError>([] {
              parse_lang_list("en,e s");
            }).find("'e s' is not a language code"),
            std::string::npos);
  EXPECT_TRUE(is_language_code("zh-Hans"));
  EXPECT_TRUE(is_language_code("eng_Latn"));
  EXPECT_FALSE(is_language_code("1en"));
  EXPECT_FALSE(is_language_code("data/x"));
}

TEST(DataSpec, SplitsLangEqualsPath) {
  auto s = parse_data_spec("es=data/dev-es.tsv");
  EXPECT_EQ(s.lang, "es");
  EXPECT_EQ(s.path, "data/dev-es.tsv");
  s = parse_data_spec("runs/a=b.tsv");  // not a language before '=': a path
  EXPECT_EQ(s.lang, "");
  EXPECT_EQ(s.path, "runs/a=b.tsv");
  EXPECT_THROW(parse_data_spec("es="), xlt::UsageError);
  EXPECT_THROW(parse_data_spec("=x.tsv"), xlt::UsageError);
  EXPECT_THROW(parse_data_spec(""), xlt::UsageError);
}

TEST(DataSpecs, OneFilePerLanguageInCommandLineOrder) {
  TempDir dir;
  write_text(dir / "dev-en.tsv", xtreme_file("en", 6));
  write_text(dir / "dev-es.tsv", xtreme_file("es", 6));
  auto sets = parse_data_specs(
      {"es=" + (dir / "dev-es.tsv").string(), "en=" + (dir / "dev-en.tsv").string()}, {},
      NliFormat::kAuto);
  ASSERT_EQ(sets.size(), 2u);
  EXPECT_EQ(sets[0].lang, "es");
  EXPECT_EQ(sets[0].examples[0].lang, "es");
  EXPECT_EQ(sets[1].lang, "en");
  EXPECT_TRUE(is_parallel(sets[0], sets[1]));
}

TEST(DataSpecs, LanguageColumnFileWithLangs) {
  TempDir dir;
  auto path = (dir / "xnli.test.tsv").string();
  write_text(path, xnli_file({"ar", "en", "es", "fr"}, 5));
  auto sets = parse_data_specs({path}, {"fr", "en"}, NliFormat::kAuto);
  ASSERT_EQ(sets.size(), 2u);
  EXPECT_EQ(sets[0].lang, "fr");
  EXPECT_EQ(sets[1].lang, "en");
  EXPECT_EQ(sets[0].size(), 5);
  // Source indices differ per language in XNLI-1.0; pairIDs align them.
  EXPECT_EQ(sets[1].examples[0].index, 5);
  EXPECT_EQ(sets[0].examples[0].index, 15);
  EXPECT_TRUE(is_parallel(sets[0], sets[1]));
  // No --langs: every language in the file, in file order.
  EXPECT_EQ(parse_data_specs({path}, {}, NliFormat::kAuto).size(), 4u);

  auto msg = error_of<xlt::DataError>([&] {
    parse_data_specs({path}, {"en", "hi"}, NliFormat::kAuto);
  });
  EXPECT_NE(msg.find("language hi not found"), std::string::npos) << msg;
  EXPECT_NE(msg.find("languages present: ar, en, es, fr"), std::string::npos) << msg;
}

TEST(DataSpecs, UsageErrors) {
  TempDir dir;
  auto en = (dir / "dev-en.tsv").string();
  auto xnli = (dir / "xnli.dev.tsv").string();
  write_text(en, xtreme_file("en", 3));
  write_text(xnli, xnli_file({"en", "es"}, 3));

  auto msg = error_of<xlt::UsageError>([&] {
    parse_data_specs({"en=" + en, "en=" + en}, {}, NliFormat::kAuto);
  });
  EXPECT_NE(msg.find("language 'en' given twice"), std::string::npos) << msg;
  msg = error_of<xlt::UsageError>([&] {
    parse_data_specs({"en=" + en, xnli}, {"en", "es"}, NliFormat::kAuto);
  });
  EXPECT_NE(msg.find("language 'en' given twice"), std::string::npos) << msg;

  msg = error_of<xlt::UsageError>([&] { parse_data_specs({en}, {}, NliFormat::kAuto); });
  EXPECT_NE(msg.find("has no language column"), std::string::npos) << msg;
  EXPECT_NE(msg.find("--data LANG=" + en), std::string::npos) << msg;
  msg = error_of<xlt::UsageError>([&] { parse_data_specs({en}, {"en", "es"}, NliFormat::kAuto); });
  EXPECT_NE(msg.find("--langs names 2 languages"), std::string::npos) << msg;
  // A single-language file with --langs of size 1 is fine.
  EXPECT_EQ(parse_data_specs({en}, {"en"}, NliFormat::kAuto)[0].lang, "en");

  msg = error_of<xlt::UsageError>([&] { parse_data_specs({}, {}, NliFormat::kAuto); });
  EXPECT_NE(msg.find("no --data given"), std::string::npos) << msg;

  SpecOptions train;
  train.flag = "--train";
  msg = error_of<xlt::IoError>(
      [&] { parse_data_specs({"en=" + (dir / "missing.jsonl").string()}, {}, train); });
  EXPECT_NE(msg.find("--train en=" + (dir / "missing.jsonl").string() + ": file not found"),
            std::string::npos)
      << msg;
}

TEST(DataSpecs, LangsPicksAmongLangPathValuesWhereTheCallerAsks) {
  TempDir dir;
  const auto en = (dir / "dev-en.tsv").string(), es = (dir / "dev-es.tsv").string(),
             fr = (dir / "dev-fr.tsv").string();
  write_text(en, xtreme_file("en", 3));
  write_text(es, xtreme_file("es", 4));
  write_text(fr, xtreme_file("fr", 5));
  const std::vector<std::string> specs = {"en=" + en, "es=" + es, "fr=" + fr};
  SpecOptions pick;
  pick.langs_select_values = true;
  // Command-line order, not --langs order.
  auto sets = parse_data_specs(specs, {"fr", "en"}, pick);
  ASSERT_EQ(sets.size(), 2u);
  EXPECT_EQ(sets[0].lang, "en");
  EXPECT_EQ(sets[1].lang, "fr");
  EXPECT_EQ(sets[1].size(), 5);
  EXPECT_EQ(parse_data_specs(specs, {}, pick).size(), 3u);
  // A language no value gives (a typo) is refused before any file is read.
  auto msg = error_of<xlt::UsageError>([&] {
    parse_data_specs({"en=" + en, "es=" + (dir / "missing.tsv").string()}, {"esp"}, pick);
  });
  EXPECT_EQ(msg, "--langs names 'esp', which no --data LANG=PATH value gives (they give: en, es)");
  // Without the option (finetune's shared --langs) every value is read.
  EXPECT_EQ(parse_data_specs(specs, {"fr"}, SpecOptions{}).size(), 3u);
  // With a language-column file, --langs keeps choosing in that file only.
  const auto xnli = (dir / "xnli.dev.tsv").string();
  write_text(xnli, xnli_file({"ar", "de"}, 3));
  sets = parse_data_specs({"en=" + en, xnli}, {"de"}, pick);
  ASSERT_EQ(sets.size(), 2u);
  EXPECT_EQ(sets[0].lang, "en");
  EXPECT_EQ(sets[1].lang, "de");
}

TEST(DataSpecs, ParallelismNeedsSameRowsInSameOrder) {
  TempDir dir;
  write_text(dir / "a.tsv", xtreme_file("en", 6));
  write_text(dir / "b.tsv", xtreme_file("es", 5));
  auto a = read_nli_file(dir / "a.tsv", "en");
  auto b = read_nli_file(dir / "b.tsv", "es");
  EXPECT_FALSE(is_parallel(a, b));
  a.examples.pop_back();
  EXPECT_TRUE(is_parallel(a, b));
  std::swap(b.examples[0], b.examples[1]);
  EXPECT_FALSE(is_parallel(a, b));
}

TEST(Subsample, SameRowsInEveryParallelLanguageAndSourceOrder) {
  TempDir dir;
  std::vector<std::string> specs;
  for (std::string l : {"en", "es", "fr"}) {
    write_text(dir / ("dev-" + l + ".tsv"), xtreme_file(l, 30));
    specs.push_back(l + "=" + (dir / ("dev-" + l + ".tsv")).string());
  }
  auto sets = parse_data_specs(specs, {}, NliFormat::kAuto);
  subsample(sets, 7, 5);
  auto expected = sample_without_replacement(30, 7, 5);
  for (const auto& d : sets) {
    ASSERT_EQ(d.size(), 7);
    for (size_t i = 0; i < 7; ++i) EXPECT_EQ(d.examples[i].index, expected[i]);
  }
  EXPECT_TRUE(is_parallel(sets[0], sets[2]));
  // Same seed again: same rows; another seed: different rows.
  auto again = parse_data_specs(specs, {}, NliFormat::kAuto);
  subsample(again, 7, 5);
  EXPECT_EQ(again[1].examples[3].premise, sets[1].examples[3].premise);
  auto other = parse_data_specs(specs, {}, NliFormat::kAuto);
  subsample(other, 7, 6);
  std::vector<int64_t> a, b;
  for (auto& e : sets[0].examples) a.push_back(e.index);
  for (auto& e : other[0].examples) b.push_back(e.index);
  EXPECT_NE(a, b);
  // k >= size keeps everything.
  subsample(other, 100, 1);
  EXPECT_EQ(other[0].size(), 7);
}

TEST(Subsample, NumpySamplingKeepsTheFirstKOfNumpysPermutationInSourceOrder) {
  TempDir dir;
  std::vector<std::string> specs;
  for (std::string l : {"en", "es"}) {
    write_text(dir / ("dev-" + l + ".tsv"), xtreme_file(l, 12));
    specs.push_back(l + "=" + (dir / ("dev-" + l + ".tsv")).string());
  }
  auto sets = parse_data_specs(specs, {}, NliFormat::kAuto);
  subsample(sets, 5, 42, Sampling::kNumpy);
  // np.random.default_rng(42).permutation(12)[:5] = [0, 7, 6, 9, 11] (see random_test.cpp).
  for (const auto& d : sets) {
    std::vector<int64_t> rows;
    for (const auto& e : d.examples) rows.push_back(e.index);
    EXPECT_EQ(rows, (std::vector<int64_t>{0, 6, 7, 9, 11}));
  }
  EXPECT_EQ(parse_sampling("numpy"), Sampling::kNumpy);
  EXPECT_EQ(parse_sampling("xlt"), Sampling::kXlt);
  EXPECT_THROW(parse_sampling("NumPy"), xlt::UsageError);
}

// --skip-bad-rows drops a bad row from one language only: the sample must still be the same
// pairs in every language (less the bad ones), not the rows one place further on after it.
TEST(Subsample, SkippedBadRowsKeepTheirPlaceSoParallelSamplesStayAligned) {
  TempDir dir;
  // Rows of `file` (one per line) changed by `edit(row number, line)`.
  auto edited = [](const std::string& file, const std::function<void(int, std::string&)>& edit) {
    std::vector<std::string> lines;
    std::istringstream in(file);
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    std::string out;
    for (size_t i = 0; i < lines.size(); ++i) {
      edit(static_cast<int>(i), lines[i]);
      out += lines[i] + "\n";
    }
    return out;
  };
  auto no_gold = [](std::string& line) { line = line.substr(0, line.rfind('\t')) + "\t-"; };
  // Row 12 is "-" in both languages (no position in either); in es it also has no premise.
  write_text(dir / "en.tsv", edited(xtreme_file("en", 30), [&](int i, std::string& line) {
               if (i == 12) no_gold(line);
             }));
  // es row 5: four columns; row 20: label "contradictionX".
  write_text(dir / "es.tsv", edited(xtreme_file("es", 30), [&](int i, std::string& line) {
               if (i == 5) line += "\textra";
               if (i == 20) line += "X";
               if (i == 12) {
                 no_gold(line);
                 line = line.substr(line.find('\t'));
               }
             }));
  SpecOptions options;
  options.read.skip_bad_rows = true;
  const std::vector<std::string> specs = {"en=" + (dir / "en.tsv").string(),
                                          "es=" + (dir / "es.tsv").string()};
  for (Sampling how : {Sampling::kXlt, Sampling::kNumpy}) {
    auto sets = parse_data_specs(specs, {}, options);
    ASSERT_EQ(sets[0].size(), 29);
    ASSERT_EQ(sets[1].size(), 27);
    EXPECT_EQ(sets[1].report.bad_total(), 3);
    EXPECT_EQ(sets[1].report.bad_without_language, 0);  // no "could not be read" warning
    EXPECT_EQ(sets[1].bad_positions, (std::vector<int64_t>{5, 19}));
    subsample(sets, 27, 3, how);
    std::vector<int64_t> en, es;
    for (const auto& e : sets[0].examples) en.push_back(e.index);
    for (const auto& e : sets[1].examples) es.push_back(e.index);
    ASSERT_EQ(en.size(), 27u);
    std::vector<int64_t> expected;
    for (int64_t i : en)
      if (i != 5 && i != 20) expected.push_back(i);
    EXPECT_EQ(es, expected);
    EXPECT_LT(es.size(), en.size()) << "the draw missed both bad rows: the test shows nothing";
    EXPECT_TRUE(sets[1].bad_positions.empty());
  }
  // Positions that cannot be a language's bad rows are refused, not read past the examples.
  auto sets = parse_data_specs(specs, {}, options);
  for (std::vector<int64_t> bad : {std::vector<int64_t>{9, 40}, {9, 9}, {12, 3}, {-1}}) {
    sets[1].bad_positions = bad;
    EXPECT_THROW(subsample(sets, 10, 1), xlt::Error) << ::testing::PrintToString(bad);
    EXPECT_EQ(sets[0].size(), 29) << "checked before any set was sampled";
  }
  // A language-column file: the bad row is placed in its own language's rows.
  write_text(dir / "xnli.tsv", edited(xnli_file({"en", "fr"}, 30), [](int i, std::string& line) {
               if (i == 1 + 30 + 8) line += "\textra";
             }));
  sets = read_nli_by_language(dir / "xnli.tsv", {}, options.read);
  ASSERT_EQ(sets.size(), 2u);
  EXPECT_EQ(sets[1].bad_positions, (std::vector<int64_t>{8}));
  subsample(sets, 25, 3);
  std::vector<std::string> en, fr;
  for (const auto& e : sets[0].examples) en.push_back(e.pair_id);
  for (const auto& e : sets[1].examples) fr.push_back(e.pair_id);
  en.erase(std::remove(en.begin(), en.end(), "108"), en.end());
  EXPECT_EQ(fr, en);
  EXPECT_EQ(fr.size(), 24u);
}

// A dataset `xlt download-data` fetched, named by spec (docs/download.md: `xlt eval MODEL --data
// xnli:lang=hi:split=test`): resolved under XLT_DATA_HOME, read with the dataset's format, in
// command-line order among LANG=PATH values; MultiNLI is English; unknown keys are refused.
TEST(DataSpecs, DownloadedDatasetSpecsResolveUnderTheDataHome) {
  TempDir home;
  std::filesystem::create_directories(home / "xnli" / "XNLI-1.0");
  write_text(home / "xnli" / "XNLI-1.0" / "xnli.test.tsv", xnli_file({"en", "es", "hi"}, 4));
  write_text(home / "xnli" / "XNLI-1.0" / "xnli.dev.tsv", xnli_file({"en", "hi"}, 2));
  std::filesystem::create_directories(home / "multinli" / "multinli_1.0");
  write_text(home / "multinli" / "multinli_1.0" / "multinli_1.0_train.jsonl",
             "{\"gold_label\": \"neutral\", \"sentence1\": \"a\", \"sentence2\": \"b\"}\n"
             "{\"gold_label\": \"entailment\", \"sentence1\": \"c\", \"sentence2\": \"d\"}\n");
  const std::string fr = (home / "fr.tsv").string();
  write_text(fr, xtreme_file("fr", 3));
  ::setenv("XLT_DATA_HOME", home.path().c_str(), 1);

  auto sets = parse_data_specs({"fr=" + fr, "xnli:lang=hi,en:split=test"}, {}, NliFormat::kAuto);
  ASSERT_EQ(sets.size(), 3u);
  EXPECT_EQ(sets[0].lang, "fr");
  EXPECT_EQ(sets[1].lang, "hi");
  EXPECT_EQ(sets[2].lang, "en");
  EXPECT_EQ(sets[1].size(), 4);
  EXPECT_EQ(sets[1].examples[0].premise, "hi premise 0");
  EXPECT_TRUE(is_parallel(sets[1], sets[2]));
  // Without lang=: --langs, else every language; split=dev reads the dev file.
  EXPECT_EQ(parse_data_specs({"xnli:split=test"}, {}, NliFormat::kAuto).size(), 3u);
  sets = parse_data_specs({"xnli:split=dev"}, {"hi"}, NliFormat::kAuto);
  ASSERT_EQ(sets.size(), 1u);
  EXPECT_EQ(sets[0].size(), 2);
  sets = parse_data_specs({"multinli:split=train"}, {}, NliFormat::kAuto);
  ASSERT_EQ(sets.size(), 1u);
  EXPECT_EQ(sets[0].lang, "en");
  EXPECT_EQ(sets[0].examples[1].label, 0);  // entailment

  auto msg = error_of<xlt::UsageError>(
      [&] { parse_data_specs({"xnli:lang=hi:limit=3"}, {}, NliFormat::kAuto); });
  EXPECT_NE(msg.find("unknown key 'limit'"), std::string::npos) << msg;
  msg = error_of<xlt::UsageError>([&] {
    parse_data_specs({"xnli:lang=en", "en=" + fr}, {}, NliFormat::kAuto);
  });
  EXPECT_NE(msg.find("language 'en' given twice"), std::string::npos) << msg;
  msg = error_of<xlt::UsageError>(
      [&] { parse_data_specs({"xnli:lang=en,en"}, {}, NliFormat::kAuto); });
  EXPECT_NE(msg.find("xnli:lang=en,en: language 'en' given twice"), std::string::npos) << msg;
  // MultiNLI is English whatever --langs says (it selects languages of the other values): one
  // language in --langs does not relabel it.
  for (const auto& langs : {std::vector<std::string>{"es"}, std::vector<std::string>{"en", "es"}}) {
    sets = parse_data_specs({"multinli:split=train"}, langs, NliFormat::kAuto);
    ASSERT_EQ(sets.size(), 1u);
    EXPECT_EQ(sets[0].lang, "en");
  }
  sets = parse_data_specs({"multinli:split=train", "xnli:split=dev"}, {"hi"}, NliFormat::kAuto);
  ASSERT_EQ(sets.size(), 2u);
  EXPECT_EQ(sets[0].lang, "en");
  EXPECT_EQ(sets[1].lang, "hi");
  ::setenv("XLT_DATA_HOME", (home / "empty").c_str(), 1);
  msg = error_of<xlt::DataError>([&] { parse_data_specs({"xnli:lang=en"}, {}, NliFormat::kAuto); });
  EXPECT_NE(msg.find("xlt download-data xnli"), std::string::npos) << msg;
  EXPECT_NE(msg.find("set by XLT_DATA_HOME"), std::string::npos) << msg;
  ::unsetenv("XLT_DATA_HOME");
}
