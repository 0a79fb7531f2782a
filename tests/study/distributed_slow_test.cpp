// `xlt study` under `xlt launch -n 2` (Gloo over 127.0.0.1) on the offline demo with 2 epochs:
// the sharded baseline and zero-shot stages reproduce a single-process run's results, rank 0
// alone writes, and the fine-tuning stage trains data-parallel with the configured global batch.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <sstream>

#include "common/test_env.h"

namespace xlt::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

class DistributedStudy : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::copy(source_dir() / "examples" / "demo", tmp_ / "demo", fs::copy_options::recursive);
    set_config("epochs = 2 ", "batch_size = 16");
  }
  // The demo config with fewer epochs (seconds, not minutes) and a chosen batch line.
  void set_config(const std::string& epochs, const std::string& batch) {
    std::string toml = read_text(source_dir() / "examples" / "demo.toml");
    auto replace = [&toml](const std::string& from, const std::string& to) {
      const auto at = toml.find(from);
      ASSERT_NE(at, std::string::npos) << from;
      toml.replace(at, from.size(), to);
    };
    replace("epochs = 20 ", epochs);
    replace("batch_size = 16", batch);
    write_text(tmp_ / "demo.toml", toml);
  }
  CommandResult study(const std::string& launch, const std::string& stages) {
    return run_xlt(launch + "study " + shell_quote((tmp_ / "demo.toml").string()) + " --out " +
                   shell_quote((tmp_ / "out").string()) + " --stages " + stages +
                   " --quiet --dist-timeout 60");
  }
  json read_json(const std::string& rel) { return json::parse(read_text(tmp_ / "out" / rel)); }
  TempDir tmp_;
};

const char* const kEvalUnits[] = {"baseline/seed-1", "baseline/seed-2", "zero_shot/seed-1",
                                  "zero_shot/seed-2"};

TEST_F(DistributedStudy, ShardedEvaluationStagesEqualOneProcess) {
  const std::string stages = "baseline,finetune,zero_shot,report";
  const auto one = study("", stages);
  ASSERT_EQ(one.exit_code, 0) << one.err;
  std::map<std::string, std::string> results, predictions;
  for (const char* u : kEvalUnits) {
    results[u] = read_text(tmp_ / "out" / u / "results.json");
    predictions[u] = read_text(tmp_ / "out" / u / "predictions.jsonl");
  }
  json summary1 = read_json("results.json");
  // The evaluation stages and the report again, now on 2 ranks, on the same fine-tuned models.
  for (const char* d : {"baseline", "zero_shot", "report", "results.json", "report.html"})
    fs::remove_all(tmp_ / "out" / d);
  const auto two = study("launch -n 2 ", stages);
  ASSERT_EQ(two.exit_code, 0) << two.err;
  EXPECT_NE(two.err.find("skip finetune/seed-1: up to date"), std::string::npos) << two.err;
  EXPECT_NE(two.err.find("run zero_shot/seed-2"), std::string::npos) << two.err;
  EXPECT_EQ(one.out, two.out);  // the accuracy table, printed once (by rank 0)

  for (const char* u : kEvalUnits) {
    // Accuracies, confidence intervals, confusion matrices, transfer gaps: all equal (not the
    // timings, which differ from run to run).
    auto untimed = [](json j) {
      j.erase("seconds");
      j.erase("timing");
      return j;
    };
    EXPECT_EQ(untimed(json::parse(results[u])),
              untimed(read_json(std::string(u) + "/results.json")))
        << u;
    // Row counts first: extra or lost rows must fail, not be cut off by the shorter file.
    const auto p1 = lines_of(predictions[u]);
    const auto p2 = lines_of(read_text(tmp_ / "out" / u / "predictions.jsonl"));
    EXPECT_EQ(p1.size(), 240u) << u;  // 4 languages x 60 pairs, none lost or doubled
    ASSERT_EQ(p2.size(), p1.size()) << u;
    for (size_t rows = 0; rows < p1.size(); ++rows) {
      const auto ja = json::parse(p1[rows]), jb = json::parse(p2[rows]);
      EXPECT_EQ(ja["lang"], jb["lang"]);
      EXPECT_EQ(ja["index"], jb["index"]);
      EXPECT_EQ(ja["pred"], jb["pred"]) << u << " row " << rows;
      // Each pair runs in the batch one process would use: bit for bit.
      EXPECT_EQ(ja["probs"], jb["probs"]) << u << " row " << rows;
    }
  }
  // The study's results.json: equal but for the timings and when it was made.
  json summary2 = read_json("results.json");
  for (json* s : {&summary1, &summary2}) {
    s->erase("generated");
    s->erase("timings");
  }
  EXPECT_EQ(summary1, summary2);
}

TEST_F(DistributedStudy, FineTuningIsDataParallelWithTheConfiguredGlobalBatch) {
  const auto r = study("launch -n 2 ", "finetune");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json cfg = read_json("finetune/seed-1/run/train_config.json");
  EXPECT_EQ(cfg["resolved"]["world_size"], 2);
  EXPECT_EQ(cfg["resolved"]["global_batch_size"], 16);  // train.batch_size, split over the ranks
  EXPECT_EQ(cfg["config"]["batch_size"], 8);
  // One process: ceil(135 / 16) = 9 steps per epoch; 2 ranks: ceil(ceil(135 / 2) / 8) = 9.
  EXPECT_EQ(cfg["resolved"]["total_steps"], 18);
  const json stage = read_json("finetune/seed-2/stage.json");
  EXPECT_EQ(stage["summary"]["world_size"], 2);
  EXPECT_EQ(stage["summary"]["steps"], 18);
  EXPECT_TRUE(
      fs::exists(tmp_ / "out" / "finetune" / "seed-2" / "run" / "best" / "model.safetensors"));
}

TEST_F(DistributedStudy, GlobalBatchNotDivisibleByTheRanksFailsBeforeAnyWork) {
  set_config("epochs = 2 ", "batch_size = 15");
  const auto r = study("launch -n 2 ", "finetune");
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("train.batch_size 15 is the global batch and must be a multiple of the "
                       "number of ranks (2)"),
            std::string::npos)
      << r.err;
  EXPECT_FALSE(fs::exists(tmp_ / "out" / "finetune"));
}

}  // namespace
}  // namespace xlt::test
