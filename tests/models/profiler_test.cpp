// StepProfiler and its summary: self/total times of nested ranges and the device busy time,
// computed by hand; the window of recorded steps, the files it writes and what it leaves when
// stopped early, on whichever backend this libtorch has (Kineto on 2.x, legacy on 1.13).
#include <ATen/ATen.h>
#include <ATen/record_function.h>
#include <gtest/gtest.h>
#include <torch/version.h>

#include <algorithm>
#include <random>

#include "common/test_env.h"
#include "xlt/core/error.h"
#include "xlt/models/profiler.h"

namespace xlt::test {
namespace {

namespace fs = std::filesystem;
using models::OpStats;
using models::ProfileEvent;

const OpStats& find_op(const models::ProfileSummary& s, const std::string& name, bool device) {
  for (const auto& op : s.ops) {
    if (op.name == name && op.device == device) return op;
  }
  throw std::runtime_error("no op " + name);
}

TEST(ProfileSummary, NestedRangesCountOnceInSelfTime) {
  // Thread 1: A [0,100] holds B [10,40] (which holds C [20,30]) and D [50,60]; thread 2: A [0,10].
  // Stream 7: kernels K1 [0,10], K2 [5,20], K3 [30,40] (busy 20 + 10 us).
  std::vector<ProfileEvent> events = {
      {"A", 1, false, 0, 100}, {"B", 1, false, 10, 30}, {"C", 1, false, 20, 10},
      {"D", 1, false, 50, 10}, {"A", 2, false, 0, 10},  {"K1", 7, true, 0, 10},
      {"K2", 7, true, 5, 15},  {"K3", 7, true, 30, 10},
  };
  std::shuffle(events.begin(), events.end(), std::mt19937(3));  // order must not matter
  const auto s = models::summarise_profile(events, 2, 200);

  const auto& a = find_op(s, "A", false);
  EXPECT_EQ(a.calls, 2);
  EXPECT_DOUBLE_EQ(a.total_us, 110);
  EXPECT_DOUBLE_EQ(a.self_us, 100 - 30 - 10 + 10);  // B and D nested; thread 2's A is all self
  EXPECT_DOUBLE_EQ(find_op(s, "B", false).self_us, 20);
  EXPECT_DOUBLE_EQ(find_op(s, "C", false).self_us, 10);
  EXPECT_DOUBLE_EQ(find_op(s, "D", false).self_us, 10);
  EXPECT_DOUBLE_EQ(find_op(s, "K2", true).self_us, 15);

  EXPECT_EQ(s.device_events, 3);
  EXPECT_DOUBLE_EQ(s.device_busy_us, 30);
  EXPECT_DOUBLE_EQ(s.device_busy_fraction(), 30.0 / 200.0);
  EXPECT_DOUBLE_EQ(s.wall_ms_per_step(), 0.1);

  // CPU entries by self time (ties by name), then device entries.
  std::vector<std::string> order;
  for (const auto& op : s.ops) order.push_back(op.name);
  EXPECT_EQ(order, (std::vector<std::string>{"A", "B", "C", "D", "K2", "K1", "K3"}));
}

TEST(ProfileSummary, AdjacentRangesAreSiblings) {
  const auto s = models::summarise_profile(
      {{"first", 1, false, 0, 10}, {"second", 1, false, 10, 10}, {"third", 1, false, 20, 5}}, 1,
      25);
  EXPECT_DOUBLE_EQ(find_op(s, "first", false).self_us, 10);
  EXPECT_DOUBLE_EQ(find_op(s, "second", false).self_us, 10);
  EXPECT_DOUBLE_EQ(find_op(s, "third", false).self_us, 5);
  EXPECT_EQ(s.device_events, 0);
  EXPECT_DOUBLE_EQ(s.device_busy_fraction(), 0);
}

TEST(ProfileSummary, CsvQuotesNamesAndGivesShares) {
  const auto s = models::summarise_profile(
      {{"aten::mm", 1, false, 0, 3000}, {"f(a, \"b\")", 1, false, 3000, 1000}}, 2, 4000);
  const auto lines = lines_of(models::profile_ops_csv(s));
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0], "name,device,calls,self_ms,total_ms,self_ms_per_step,self_percent");
  EXPECT_EQ(lines[1], "aten::mm,cpu,1,3,3,1.5,75");
  EXPECT_EQ(lines[2], "\"f(a, \"\"b\"\")\",cpu,1,1,1,0.5,25");
}

TEST(ProfileSummary, JsonAndTableListTheTopEntries) {
  std::vector<ProfileEvent> events;
  for (int i = 0; i < 5; ++i)
    events.push_back({"op" + std::to_string(i), 1, false, i * 10.0, 10.0 - i});
  auto s = models::summarise_profile(events, 1, 50);
  s.backend = "legacy";
  s.device_name = "cpu";
  const auto j = s.to_json(3);
  ASSERT_EQ(j["ops"].size(), 3u);
  EXPECT_EQ(j["ops"][0]["name"], "op0");
  EXPECT_DOUBLE_EQ(j["ops"][0]["self_ms"].get<double>(), 0.010);
  EXPECT_EQ(j["steps"], 1);
  EXPECT_DOUBLE_EQ(j["wall_ms_per_step"].get<double>(), 0.05);
  const auto table = models::format_profile_table(s, 2);
  EXPECT_NE(table.find("op1"), std::string::npos);
  EXPECT_EQ(table.find("op2"), std::string::npos);
  EXPECT_NE(table.find("1 steps"), std::string::npos);

  const auto trace = models::chrome_trace(events);
  ASSERT_EQ(trace["traceEvents"].size(), 5u);
  EXPECT_EQ(trace["traceEvents"][4]["ph"], "X");
  EXPECT_DOUBLE_EQ(trace["traceEvents"][4]["dur"].get<double>(), 6.0);
}

// One "step": two matrix products inside an xlt:: range.
void fake_step(const at::Tensor& x) {
  RECORD_USER_SCOPE("xlt::test_step");
  auto y = at::mm(x, x);
  y = at::mm(y, x);
  (void)y.sum().item<float>();
}

TEST(StepProfiler, RecordsTheWindowAndWritesItsFiles) {
  TempDir dir;
  models::ProfileOptions po;
  po.dir = dir / "prof";
  po.skip = 2;
  po.steps = 3;
  models::StepProfiler profiler(po);
  auto x = at::randn({64, 64});
  for (int i = 1; i <= 7; ++i) {
    profiler.begin_step();
    EXPECT_EQ(profiler.recording(), i >= 3 && i <= 5) << "in step " << i;
    fake_step(x);
    EXPECT_EQ(profiler.end_step(), i == 5);
    EXPECT_EQ(profiler.recording(), i >= 3 && i < 5) << "after step " << i;
    EXPECT_EQ(fs::exists(po.dir / "profile.json"), i >= 5) << "after step " << i;
  }
  ASSERT_TRUE(profiler.finished());
  EXPECT_EQ(profiler.unfinished_note(), "");
  const auto& s = profiler.summary();
  EXPECT_EQ(s.backend, TORCH_VERSION_MAJOR >= 2 ? "kineto" : "legacy");
  EXPECT_EQ(s.steps, 3);
  EXPECT_EQ(find_op(s, "aten::mm", false).calls, 6);  // 3 recorded steps x 2
  const auto& scope = find_op(s, "xlt::test_step", false);
  EXPECT_EQ(scope.calls, 3);
  // The scope's self time excludes the products nested in it.
  EXPECT_LT(scope.self_us, scope.total_us - find_op(s, "aten::mm", false).total_us + 1e-6);
  EXPECT_GT(s.wall_us, 0);
  EXPECT_GE(s.wall_us, scope.total_us);

  const auto j = nlohmann::json::parse(read_text(po.dir / "profile.json"));
  EXPECT_EQ(j["steps"], 3);
  EXPECT_EQ(j["device"], "cpu");
  const auto csv = read_text(po.dir / "ops.csv");
  EXPECT_NE(csv.find("\naten::mm,cpu,6,"), std::string::npos) << csv;
  const auto trace = nlohmann::json::parse(read_text(po.dir / "trace.json"));
  int mm = 0;
  for (const auto& e : trace["traceEvents"]) mm += e.value("name", "") == "aten::mm";
  EXPECT_EQ(mm, 6);
  // Only the three files, no temp files left behind.
  int files = 0;
  for ([[maybe_unused]] const auto& f : fs::directory_iterator(po.dir)) ++files;
  EXPECT_EQ(files, 3);
}

TEST(StepProfiler, StoppedInsideTheWindowWritesNothingAndReleasesTheProfiler) {
  TempDir dir;
  auto x = at::randn({16, 16});
  models::ProfileOptions po;
  po.dir = dir / "first";
  po.skip = 0;
  po.steps = 4;
  {
    models::StepProfiler profiler(po);
    EXPECT_FALSE(profiler.recording());  // nothing before the first step
    profiler.begin_step();
    EXPECT_TRUE(profiler.recording());
    fake_step(x);
    profiler.end_step();
    EXPECT_NE(profiler.unfinished_note().find("after 1 steps"), std::string::npos)
        << profiler.unfinished_note();
  }  // an interrupted run
  EXPECT_FALSE(fs::exists(po.dir / "trace.json"));
  EXPECT_FALSE(fs::exists(po.dir / "profile.json"));
  // The global profiler is off again: a second profile starts and completes.
  po.dir = dir / "second";
  po.steps = 1;
  models::StepProfiler again(po);
  again.begin_step();
  fake_step(x);
  again.end_step();
  EXPECT_TRUE(again.finished());
  EXPECT_EQ(find_op(again.summary(), "aten::mm", false).calls, 2);
}

TEST(StepProfiler, DisabledWithoutAFolderAndRejectsBadCounts) {
  models::StepProfiler off({});
  EXPECT_FALSE(off.enabled());
  off.begin_step();
  EXPECT_FALSE(off.recording());
  off.end_step();
  EXPECT_EQ(off.unfinished_note(), "");

  TempDir dir;
  models::ProfileOptions po;
  po.dir = dir / "p";
  po.steps = 0;
  EXPECT_TRUE(
      throws_with<UsageError>([&] { models::StepProfiler p(po); }, {"--profile-steps", ">= 1"}));
  po.steps = 1;
  po.skip = -1;
  EXPECT_TRUE(throws_with<UsageError>([&] { models::StepProfiler p(po); }, {"--profile-skip"}));
  write_text(dir / "file", "x");
  po.skip = 0;
  po.dir = dir / "file";
  EXPECT_TRUE(throws_with<UsageError>([&] { models::StepProfiler p(po); }, {"--profile"}));
}

}  // namespace
}  // namespace xlt::test
