// Interruption and resume of `xlt finetune` through the real binary. SIGINT/SIGTERM stop at a
// safe point with a resumable state (exit 130/143) that resumes bit-exactly; a file-size limit
// (RLIMIT_FSIZE: a full disk as far as write(2) can tell) gives a clear error and leaves the
// previous state intact and no temp files. SIGKILL harness: kill the process at random points
// (three seeds, up to four kills each, some landing while a checkpoint is being written), then
// continue with --resume (or
// --overwrite when no state was saved yet) until the run completes. The final weights, the best
// checkpoint and the logged losses must equal an uninterrupted run's bit for bit (CPU, 1 thread),
// and no temporary file may be left under the output folder.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <random>

#include "crash_safety_fixture.h"

namespace xlt::test {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> finetune_args(const fs::path& tmp, const fs::path& model,
                                       const std::string& out) {
  return {"finetune", model.string(),
          "--train",  "en=" + (tmp / "train.jsonl").string(),
          "--dev",    "en=" + (tmp / "dev.jsonl").string(),
          "--out",    (tmp / out).string(),
          "--quiet",  "--threads",
          "1",        "--max-length",
          "32",       "--batch-size",
          "16",       "--lr",
          "1e-3",     "--log-every",
          "1",        "--eval-every",
          "7",        "--save-every",
          "3",        "--max-steps",
          "45"};
}

void expect_same(const fs::path& a, const fs::path& b) {
  const auto ta = read_safetensors(a);
  const auto tb = read_safetensors(b);
  ASSERT_EQ(ta.size(), tb.size());
  for (const auto& [name, t] : ta) EXPECT_TRUE(at::equal(t, tb.at(name))) << a << " " << name;
}

TEST(CrashSafetySlow, SigkillAtRandomPointsThenResumeIsBitExact) {
  if (!fs::exists(cli_path())) GTEST_SKIP() << "xlt binary not built: " << cli_path();
  TempDir tmp;
  const fs::path model = make_tiny_bert(tmp / "tiny");
  write_marker_task(tmp / "train.jsonl", 480, 1);
  write_marker_task(tmp / "dev.jsonl", 60, 2);
  const int total = 45;

  Child ref = spawn_xlt(finetune_args(tmp.path(), model, "ref"), tmp.path());
  auto rs = wait_child(ref);
  ASSERT_EQ(rs.exit_code, 0) << rs.err;

  for (uint32_t seed : {1u, 2u, 3u}) {
    std::mt19937 rng(seed);
    const std::string out = "killed" + std::to_string(seed);
    const fs::path dir = tmp / out;
    int kills = 0;
    for (int attempt = 0; attempt < 12; ++attempt) {
      auto a = finetune_args(tmp.path(), model, out);
      if (attempt > 0) {
        a.push_back(fs::exists(dir / "state" / "trainer_state.json") ? "--resume" : "--overwrite");
      }
      Child c = spawn_xlt(a, tmp.path());
      if (kills < 4) {
        // Kill once the log shows a random number of further steps, plus 0-40 ms so that some
        // kills land inside a checkpoint write.
        const int target = std::min(
            total - 1, train_records(dir / "log.jsonl") + 1 + static_cast<int>(rng() % 12));
        wait_until([&] { return !child_running(c) || train_records(dir / "log.jsonl") >= target; },
                   std::chrono::seconds(300));
        std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 40));
        if (kill_if_running(c)) ++kills;
      }
      auto s = wait_child(c);
      if (s.exited) {
        ASSERT_EQ(s.exit_code, 0) << "seed " << seed << " attempt " << attempt << ": " << s.err;
        break;
      }
      ASSERT_EQ(s.signal, SIGKILL) << s.err;
    }
    EXPECT_GE(kills, 1) << "seed " << seed << ": no kill landed; the test checked nothing";
    ASSERT_TRUE(fs::exists(dir / "results.json")) << "seed " << seed << " did not finish";
    EXPECT_EQ(nlohmann::json::parse(read_text(dir / "results.json"))["steps"], total);
    expect_same(tmp / "ref" / "last" / "model.safetensors", dir / "last" / "model.safetensors");
    expect_same(tmp / "ref" / "best" / "model.safetensors", dir / "best" / "model.safetensors");
    EXPECT_EQ(logged_losses(tmp / "ref" / "log.jsonl"), logged_losses(dir / "log.jsonl"))
        << "seed " << seed;
    for (const auto& e : fs::recursive_directory_iterator(dir)) {
      EXPECT_EQ(e.path().filename().string().find(".tmp."), std::string::npos) << e.path();
    }
    std::cerr << "seed " << seed << ": " << kills << " SIGKILLs, resumed to the same weights\n";
  }
}

using CrashSafetyResume = CrashSafetyFixture;
using nlohmann::json;

// SIGINT (then SIGTERM) mid-run: exit 128+sig after saving state at the step it stopped on, a
// message saying how to resume; --resume then ends with the weights of an uninterrupted run.
TEST_F(CrashSafetyResume, SignalStopsAtSafePointAndResumeIsBitExact) {
  const int64_t steps = 150;
  auto ref = run(args("ref", steps));
  ASSERT_EQ(ref.exit_code, 0) << ref.err;

  for (int sig : {SIGINT, SIGTERM}) {
    const std::string out = sig == SIGINT ? "int" : "term";
    Child c = spawn_xlt(args(out, steps), tmp_.path());
    ASSERT_TRUE(wait_until([&] { return train_records(tmp_ / out / "log.jsonl") >= 5; }))
        << read_text(c.err);
    ::kill(c.pid, sig);
    auto s = wait_child(c);
    ASSERT_TRUE(s.exited) << "killed by signal " << s.signal << ": " << s.err;
    EXPECT_EQ(s.exit_code, 128 + sig) << s.err;
    EXPECT_NE(s.err.find(sig == SIGINT ? "stopped by SIGINT" : "stopped by SIGTERM"),
              std::string::npos)
        << s.err;
    EXPECT_NE(s.err.find("run the same command with --resume"), std::string::npos) << s.err;
    const auto state = read_json(tmp_ / out / "state" / "trainer_state.json");
    const int64_t at = state["global_step"].get<int64_t>();
    EXPECT_GE(at, 5);
    EXPECT_LT(at, steps) << "the signal came too late to test anything";
    EXPECT_EQ(read_json(tmp_ / out / "results.json")["steps"], at);
    EXPECT_TRUE(fs::exists(tmp_ / out / "last" / "model.safetensors"));
    EXPECT_TRUE(temp_leftovers(tmp_ / out).empty());

    auto resumed = run(args(out, steps, {"--resume"}));
    ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
    EXPECT_NE(resumed.err.find("resuming at step " + std::to_string(at)), std::string::npos)
        << resumed.err;
    const auto a = read_safetensors(tmp_ / "ref" / "last" / "model.safetensors");
    const auto b = read_safetensors(tmp_ / out / "last" / "model.safetensors");
    ASSERT_EQ(a.size(), b.size());
    for (const auto& [name, t] : a) EXPECT_TRUE(at::equal(t, b.at(name))) << name;
    EXPECT_EQ(logged_losses(tmp_ / "ref" / "log.jsonl"), logged_losses(tmp_ / out / "log.jsonl"));
  }
}

// A file-size limit below the checkpoint size: the save fails with "File too large" (exit 2),
// state/ still holds the previous step and loads, and no temp file or folder is left.
TEST_F(CrashSafetyResume, DiskFullKeepsThePreviousCheckpoint) {
  auto first = run(args("full", 12, {"--save-every", "3", "--stop-after", "3"}));
  ASSERT_EQ(first.exit_code, 0) << first.err;
  // Stopped before the first dev evaluation (every 10 steps): no best checkpoint yet, and no
  // placeholder accuracy in its place.
  EXPECT_TRUE(read_json(tmp_ / "full" / "results.json")["best"].is_null());
  EXPECT_FALSE(fs::exists(tmp_ / "full" / "best"));
  EXPECT_EQ(first.out.find("best dev accuracy"), std::string::npos) << first.out;
  EXPECT_NE(first.out.find("no best/: stopped before the first dev evaluation"), std::string::npos)
      << first.out;
  const auto model_bytes = fs::file_size(tmp_ / "full" / "state" / "model.safetensors");
  const std::string before = read_text(tmp_ / "full" / "state" / "model.safetensors");

  auto limited =
      run(args("full", 12, {"--save-every", "3", "--resume"}), static_cast<long>(model_bytes / 2));
  EXPECT_TRUE(limited.exited) << "killed by signal " << limited.signal;
  EXPECT_EQ(limited.exit_code, 2) << limited.err;
  EXPECT_NE(limited.err.find("File too large"), std::string::npos) << limited.err;
  EXPECT_EQ(read_json(tmp_ / "full" / "state" / "trainer_state.json")["global_step"], 3);
  EXPECT_EQ(read_text(tmp_ / "full" / "state" / "model.safetensors"), before);
  EXPECT_TRUE(temp_leftovers(tmp_ / "full").empty())
      << ::testing::PrintToString(temp_leftovers(tmp_ / "full"));

  // The intact state resumes and ends where an uninterrupted run ends.
  auto ref = run(args("ref", 12, {"--save-every", "3"}));
  ASSERT_EQ(ref.exit_code, 0) << ref.err;
  auto resumed = run(args("full", 12, {"--save-every", "3", "--resume"}));
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  const auto a = read_safetensors(tmp_ / "ref" / "last" / "model.safetensors");
  const auto b = read_safetensors(tmp_ / "full" / "last" / "model.safetensors");
  for (const auto& [name, t] : a) EXPECT_TRUE(at::equal(t, b.at(name))) << name;
}

}  // namespace
}  // namespace xlt::test
