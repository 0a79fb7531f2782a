// Tests for the results files: per-language result assembly, results.json layout (the contract
// `xlt eval` writes), transfer gaps paired only for parallel sets, the CSV table, and
// predictions.jsonl written atomically and read back.
#include "xlt/eval/results.h"

#include <gtest/gtest.h>

#include "common/test_env.h"
#include "xlt/core/error.h"
#include "xlt/core/file.h"

using namespace xlt::eval;
using xlt::test::TempDir;

namespace {
const std::vector<int> kGold = {0, 0, 0, 1, 1, 2, 2, 2, 2, 1};
const std::vector<int> kPredEn = {0, 0, 1, 1, 2, 2, 2, 0, 2, 1};  // 7/10
const std::vector<int> kPredEs = {0, 1, 1, 1, 2, 2, 0, 0, 2, 1};  // 5/10

xlt::data::NliDataset dataset(const std::string& lang, int64_t first_index) {
  xlt::data::NliDataset d;
  d.lang = lang;
  for (size_t i = 0; i < kGold.size(); ++i) {
    xlt::data::NliExample e;
    e.lang = lang;
    e.label = kGold[i];
    e.index = first_index + static_cast<int64_t>(i);
    d.examples.push_back(e);
  }
  return d;
}

EvalSummary summary_for(const std::vector<xlt::data::NliDataset>& sets) {
  EvalSummary s;
  s.bootstrap = {1000, 7};
  s.languages.push_back(compute_language_result("en", kGold, kPredEn, s.bootstrap));
  s.languages.push_back(compute_language_result("es", kGold, kPredEs, s.bootstrap));
  add_transfer_gaps(s, sets);
  return s;
}
}  // namespace

TEST(Results, LanguageResultHoldsAllStatistics) {
  auto r = compute_language_result("en", kGold, kPredEn, {1000, 7});
  EXPECT_EQ(r.lang, "en");
  EXPECT_EQ(r.n, 10);
  EXPECT_NEAR(r.accuracy, 0.7, 1e-12);
  EXPECT_NEAR(r.macro_f1, 25.0 / 36, 1e-12);
  EXPECT_NEAR(r.chance, 0.4, 1e-12);
  EXPECT_LE(r.ci95.low, 0.7);
  EXPECT_GE(r.ci95.high, 0.7);
  EXPECT_EQ(r.label_names, xlt::data::LabelSet::nli().names);
  EXPECT_EQ(r.correct.size(), 10u);
  EXPECT_THROW(compute_language_result("en", {0, -1}, {0, 0}, {}), xlt::DataError);
  // All right: the Wilson interval, since the bootstrap has no spread.
  auto perfect = compute_language_result("en", kGold, kGold, {1000, 7});
  EXPECT_EQ(perfect.ci95_method, IntervalMethod::kWilson);
  EXPECT_LT(perfect.ci95.low, 0.75);
  EXPECT_EQ(perfect.ci95.high, 1.0);
  EXPECT_EQ(language_result_to_json(perfect).at("ci95_method"), "wilson");
}

TEST(Results, JsonFollowsTheContract) {
  auto s = summary_for({dataset("en", 0), dataset("es", 0)});
  auto j = results_to_json(s);
  const auto& en = j.at("languages").at("en");
  EXPECT_NEAR(en.at("accuracy").get<double>(), 0.7, 1e-12);
  EXPECT_EQ(en.at("n").get<int64_t>(), 10);
  EXPECT_EQ(en.at("ci95").size(), 2u);
  EXPECT_EQ(en.at("ci95_method"), "percentile");
  EXPECT_NEAR(en.at("chance").get<double>(), 0.4, 1e-12);
  EXPECT_NEAR(en.at("macro_f1").get<double>(), 25.0 / 36, 1e-12);
  EXPECT_EQ(en.at("confusion"), nlohmann::json::parse("[[2,1,0],[0,2,1],[1,0,3]]"));
  EXPECT_EQ(en.at("label_names")[2], "contradiction");
  EXPECT_EQ(en.at("per_class")[2].at("label"), "contradiction");
  EXPECT_NEAR(en.at("per_class")[2].at("f1").get<double>(), 0.75, 1e-12);
  EXPECT_FALSE(en.contains("transfer_gap"));  // the source has no gap
  const auto& gap = j.at("languages").at("es").at("transfer_gap");
  EXPECT_NEAR(gap.at("gap").get<double>(), 0.2, 1e-12);
  EXPECT_TRUE(gap.at("paired").get<bool>());
  EXPECT_LE(gap.at("ci95")[0].get<double>(), 0.2);
  EXPECT_GE(gap.at("ci95")[1].get<double>(), 0.2);
  EXPECT_EQ(j.at("bootstrap").at("resamples"), 1000);
  EXPECT_EQ(j.at("bootstrap").at("seed"), 7);
  EXPECT_EQ(j.at("source_lang"), "en");
}

TEST(Results, GapIsUnpairedForNonParallelSetsAndAbsentWithoutSource) {
  auto s = summary_for({dataset("en", 0), dataset("es", 100)});
  ASSERT_EQ(s.transfer_gaps.count("es"), 1u);
  EXPECT_FALSE(s.transfer_gaps.at("es").paired);
  s.source_lang = "fr";
  add_transfer_gaps(s, {dataset("en", 0), dataset("es", 0)});
  EXPECT_TRUE(s.transfer_gaps.empty());
}

TEST(Results, CsvTableAndAtomicFiles) {
  TempDir dir;
  auto s = summary_for({dataset("en", 0), dataset("es", 0)});
  write_results_csv(dir / "results.csv", s);
  write_results_json(dir / "results.json", results_to_json(s));
  auto csv = xlt::read_file(dir / "results.csv");
  EXPECT_EQ(csv.substr(0, csv.find('\n')),
            "lang,n,accuracy,ci95_low,ci95_high,macro_f1,chance,gap,gap_ci95_low,gap_ci95_high,"
            "paired");
  EXPECT_NE(csv.find("\nen,10,0.700000,"), std::string::npos) << csv;
  EXPECT_NE(csv.find(",0.694444,0.400000,,,,\n"), std::string::npos) << csv;
  EXPECT_NE(csv.find("\nes,10,0.500000,"), std::string::npos) << csv;
  EXPECT_NE(csv.find(",0.200000,"), std::string::npos) << csv;
  EXPECT_NE(csv.find(",true\n"), std::string::npos) << csv;
  auto back = nlohmann::json::parse(xlt::read_file(dir / "results.json"));
  EXPECT_EQ(back, results_to_json(s));
}

TEST(Predictions, JsonlRoundTripWithShortFloats) {
  TempDir dir;
  std::vector<Prediction> rows = {{"en", 0, 2, 1, {0.1f, 0.7f, 0.2f}},
                                  {"es", 17, -1, 0, {1.0f / 3, 0.5f, 1.0f / 6}}};
  write_predictions_jsonl(dir / "predictions.jsonl", rows);
  auto text = xlt::read_file(dir / "predictions.jsonl");
  EXPECT_EQ(text.substr(0, text.find('\n')),
            "{\"gold\":2,\"index\":0,\"lang\":\"en\",\"pred\":1,\"probs\":[0.1,0.7,0.2]}");
  auto back = read_predictions_jsonl(dir / "predictions.jsonl");
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(back[1].lang, "es");
  EXPECT_EQ(back[1].index, 17);
  EXPECT_EQ(back[1].gold, -1);
  EXPECT_EQ(back[1].probs, rows[1].probs);  // bit-exact float round trip

  xlt::write_file_atomic(dir / "bad.jsonl", "{\"lang\": \"en\", \"index\": 0, \"gold\": 1}\n");
  try {
    read_predictions_jsonl(dir / "bad.jsonl");
    FAIL();
  } catch (const xlt::DataError& e) {
    EXPECT_NE(std::string(e.what()).find("bad.jsonl:1: expected fields"), std::string::npos);
  }
}
