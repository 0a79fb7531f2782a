// Readers on the real shared data (XLT_SHARED): XNLI dev/test in XTREME layout, the labelled
// test files, the MultiNLI sample as a Hugging Face JSONL export, and the prompt-wrapped MultiNLI
// CSV that must be refused with a clear message. Counts are those documented in
// shared/data/SOURCES.md.
#include <gtest/gtest.h>

#include "common/test_env.h"
#include "xlt/core/error.h"
#include "xlt/data/nli.h"
#include "xlt/data/spec.h"

using namespace xlt::data;
using xlt::test::shared_dir;

namespace {
std::filesystem::path data_dir() {
  return shared_dir() / "data";
}
}  // namespace

TEST(SharedData, XnliDevXtremeHas2490RowsPerLanguage830PerLabel) {
  auto dir = data_dir() / "xnli" / "xtreme_format";
  XLT_REQUIRE_PATH(dir / "dev-hi.tsv");
  std::vector<std::string> specs;
  for (std::string l : {"en", "es", "fr", "hi"})
    specs.push_back(l + "=" + (dir / ("dev-" + l + ".tsv")).string());
  auto sets = parse_data_specs(specs, {}, NliFormat::kAuto);
  ASSERT_EQ(sets.size(), 4u);
  for (const auto& d : sets) {
    EXPECT_EQ(d.format, NliFormat::kXtremeTsv);
    EXPECT_EQ(d.size(), 2490) << d.lang;
    EXPECT_EQ(d.label_counts(), (std::vector<int64_t>{830, 830, 830})) << d.lang;
    EXPECT_EQ(d.report.bad_total(), 0);
  }
  // Row i is parallel: same gold labels, and the first English row is as in the file.
  EXPECT_EQ(sets[0].gold(), sets[3].gold());
  EXPECT_TRUE(is_parallel(sets[0], sets[3]));
  EXPECT_EQ(sets[0].examples[0].premise, "And he said, Mama, I'm home.");
  EXPECT_EQ(sets[0].examples[0].label, 1);
}

TEST(SharedData, XnliTestFilesUnlabelledAndLabelled) {
  auto dir = data_dir() / "xnli";
  XLT_REQUIRE_PATH(dir / "labelled" / "test-fr.tsv");
  auto unlabelled = read_nli_file(dir / "xtreme_format" / "test-fr.tsv", "fr");
  EXPECT_EQ(unlabelled.size(), 5010);
  EXPECT_EQ(unlabelled.label_counts(), (std::vector<int64_t>{0, 0, 0}));
  auto labelled = read_nli_file(dir / "labelled" / "test-fr.tsv", "fr");
  EXPECT_EQ(labelled.size(), 5010);
  EXPECT_EQ(labelled.label_counts(), (std::vector<int64_t>{1670, 1670, 1670}));
  EXPECT_EQ(labelled.examples[4999].premise, unlabelled.examples[4999].premise);
}

TEST(SharedData, MultiNliTrainJsonlHas10000Rows) {
  auto path = data_dir() / "multinli" / "train.jsonl";
  XLT_REQUIRE_PATH(path);
  EXPECT_EQ(detect_nli_format(path), NliFormat::kHfJsonl);
  auto ds = read_nli_file(path, "en");
  EXPECT_EQ(ds.size(), 10000);
  EXPECT_EQ(ds.label_counts(), (std::vector<int64_t>{3239, 3367, 3394}));
  auto val = read_nli_file(data_dir() / "multinli" / "validation.jsonl", "en");
  EXPECT_EQ(val.size(), 6238);
}

TEST(SharedData, PromptWrappedMnliCsvIsRefusedNamingColumns) {
  auto path = data_dir() / "multinli" / "mnli_train.csv";
  XLT_REQUIRE_PATH(path);
  try {
    read_nli_file(path, "en");
    FAIL() << "expected DataError";
  } catch (const xlt::DataError& e) {
    std::string what = e.what();
    EXPECT_NE(what.find(path.string() + ":1: not a Hugging Face NLI CSV"), std::string::npos)
        << what;
    EXPECT_NE(what.find("premise, hypothesis, label"), std::string::npos) << what;
    EXPECT_NE(what.find("found: Question, Answer, Origin"), std::string::npos) << what;
  }
}
