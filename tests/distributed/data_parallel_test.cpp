// Data-parallel fine-tuning and sharded evaluation over Gloo on 127.0.0.1, started through
// `xlt launch` (so the launcher is tested too): 2 ranks x 1 thread against one process with the
// same global batch and seed, and a rank killed mid-run followed by --resume.
#include <gtest/gtest.h>

#include <unistd.h>

#include <chrono>

#include "common/test_env.h"
#include "train/train_test_util.h"

namespace xlt::test {
namespace {

namespace fs = std::filesystem;

// The tiny BERT without dropout: dropout masks are drawn per rank, so with dropout on the two
// runs see different (equally valid) masks; everything else must match.
fs::path make_model(const fs::path& dir) {
  make_tiny_bert(dir, 11);
  auto cfg = nlohmann::json::parse(read_text(dir / "config.json"));
  cfg["hidden_dropout_prob"] = 0.0;
  cfg["attention_probs_dropout_prob"] = 0.0;
  write_text(dir / "config.json", cfg.dump(2));
  return dir;
}

struct Fixture {
  TempDir tmp;
  fs::path model, train, dev;
  Fixture() {
    model = make_model(tmp / "model");
    train = tmp / "train.jsonl";
    dev = tmp / "dev.jsonl";
    write_marker_task(train, 64, 3);
    write_marker_task(dev, 27, 4);
  }
  // Options shared by every run; `batch` is per rank.
  std::string finetune_args(const fs::path& out, int batch, int timeout = 20) const {
    return "finetune " + shell_quote(model.string()) +
           " --train en=" + shell_quote(train.string()) + " --dev en=" + shell_quote(dev.string()) +
           " --out " + shell_quote(out.string()) + " --batch-size " + std::to_string(batch) +
           " --max-steps 6 --lr 1e-3 --log-every 1 --eval-every 3 --eval-batch-size 5"
           " --threads 1 --quiet --dist-timeout " +
           std::to_string(timeout);
  }
};

void expect_same_weights(const fs::path& a, const fs::path& b, double tol) {
  const auto wa = read_safetensors(a / "model.safetensors");
  const auto wb = read_safetensors(b / "model.safetensors");
  ASSERT_EQ(wa.size(), wb.size());
  double worst = 0;
  for (const auto& [name, t] : wa) {
    ASSERT_TRUE(wb.count(name)) << name;
    worst = std::max(worst, (t - wb.at(name)).abs().max().item<double>());
  }
  EXPECT_LE(worst, tol);
  std::cerr << "max |w_2ranks - w_1process| = " << worst << "\n";
}

// The logged pre-clipping gradient norm, step by step. AdamW divides the gradient by its own
// running magnitude, so weights and losses hardly move when ranks sum gradients instead of
// averaging them; the norm doubles.
void expect_same_grad_norms(const fs::path& single_log, const fs::path& ranks_log) {
  const auto g1 = logged_train_values(single_log, "grad_norm");
  const auto g2 = logged_train_values(ranks_log, "grad_norm");
  ASSERT_EQ(g1.size(), 6u);
  ASSERT_EQ(g2.size(), g1.size());
  for (size_t i = 0; i < g1.size(); ++i) {
    EXPECT_GT(g1[i], 0.0);
    EXPECT_NEAR(g2[i] / g1[i], 1.0, 1e-5) << "step " << i + 1 << ": " << g2[i] << " vs " << g1[i];
  }
}

TEST(DataParallel, TwoRanksEqualOneProcessWithTheSameGlobalBatch) {
  Fixture f;
  const auto single = run_xlt(f.finetune_args(f.tmp / "single", 8));
  ASSERT_EQ(single.exit_code, 0) << single.err;
  const auto two = run_xlt("launch -n 2 " + f.finetune_args(f.tmp / "two", 4));
  ASSERT_EQ(two.exit_code, 0) << two.err;

  // float32 sums in a different order (per-rank means averaged vs one mean over 8 rows,
  // batches padded to different lengths): equal up to rounding, not bit for bit.
  expect_same_weights(f.tmp / "single" / "last", f.tmp / "two" / "last", 1e-6);
  const auto l1 = logged_losses(f.tmp / "single" / "log.jsonl");
  const auto l2 = logged_losses(f.tmp / "two" / "log.jsonl");
  ASSERT_EQ(l1.size(), 6u);
  ASSERT_EQ(l2.size(), l1.size());
  for (size_t i = 0; i < l1.size(); ++i) EXPECT_NEAR(l1[i], l2[i], 1e-6) << "step " << i + 1;
  expect_same_grad_norms(f.tmp / "single" / "log.jsonl", f.tmp / "two" / "log.jsonl");

  const auto r1 = nlohmann::json::parse(read_text(f.tmp / "single" / "results.json"));
  const auto r2 = nlohmann::json::parse(read_text(f.tmp / "two" / "results.json"));
  EXPECT_EQ(r1["best"], r2["best"]);  // sharded dev evaluation: same accuracy, same best step
  EXPECT_EQ(r1["last"]["dev"]["accuracy"], r2["last"]["dev"]["accuracy"]);
  const auto cfg = nlohmann::json::parse(read_text(f.tmp / "two" / "train_config.json"));
  EXPECT_EQ(cfg["resolved"]["world_size"], 2);
  EXPECT_EQ(cfg["resolved"]["global_batch_size"], 8);
}

// Gradient accumulation (the all-reduce only on the last micro-batch) with the all-reduce
// overlapped with backward, in 4 KB buckets so that the tiny model has dozens of them: equal to
// one process, and bit for bit equal to the all-reduce after backward (--no-overlap-comm).
TEST(DataParallel, OverlappedAllReduceWithAccumulationEqualsOneProcess) {
  Fixture f;
  // Global micro-batch k of 2 ranks x 2 is the single process's micro-batch k of 4.
  const auto single = run_xlt(f.finetune_args(f.tmp / "single", 4) + " --grad-accum 2");
  ASSERT_EQ(single.exit_code, 0) << single.err;
  const std::string launch =
      "XLT_TEST_BUCKET_BYTES=4096 " + shell_quote(cli_path().string()) + " launch -n 2 ";
  const auto overlapped =
      run_command(launch + f.finetune_args(f.tmp / "overlap", 2) + " --grad-accum 2");
  ASSERT_EQ(overlapped.exit_code, 0) << overlapped.err;
  const auto buckets = overlapped.err.find("gradient all-reduce: ");
  ASSERT_NE(buckets, std::string::npos) << overlapped.err;
  EXPECT_GT(std::stoi(overlapped.err.substr(buckets + 21)), 20);  // many buckets, not one
  const auto after = run_command(launch + f.finetune_args(f.tmp / "after", 2) +
                                 " --grad-accum 2 --no-overlap-comm");
  ASSERT_EQ(after.exit_code, 0) << after.err;
  EXPECT_EQ(after.err.find("gradient all-reduce: "), std::string::npos);

  expect_same_weights(f.tmp / "single" / "last", f.tmp / "overlap" / "last", 1e-6);
  expect_same_weights(f.tmp / "after" / "last", f.tmp / "overlap" / "last", 0.0);
  const auto l1 = logged_losses(f.tmp / "single" / "log.jsonl");
  const auto l2 = logged_losses(f.tmp / "overlap" / "log.jsonl");
  ASSERT_EQ(l2.size(), l1.size());
  for (size_t i = 0; i < l1.size(); ++i) EXPECT_NEAR(l1[i], l2[i], 1e-6) << "step " << i + 1;
  expect_same_grad_norms(f.tmp / "single" / "log.jsonl", f.tmp / "overlap" / "log.jsonl");
  EXPECT_EQ(logged_losses(f.tmp / "after" / "log.jsonl"), l2);
}

TEST(DataParallel, ShardedEvalEqualsOneProcess) {
  Fixture f;
  const std::string args = "eval " + shell_quote(f.model.string()) +
                           " --data en=" + shell_quote(f.dev.string()) +
                           " --batch-size 4 --threads 1 --no-progress --out ";
  const auto one = run_xlt(args + shell_quote((f.tmp / "one").string()));
  ASSERT_EQ(one.exit_code, 0) << one.err;
  const auto two = run_xlt("launch -n 2 " + args + shell_quote((f.tmp / "two").string()));
  ASSERT_EQ(two.exit_code, 0) << two.err;
  EXPECT_EQ(one.out, two.out);  // the table, printed by rank 0 only
  auto r1 = nlohmann::json::parse(read_text(f.tmp / "one" / "results.json"));
  auto r2 = nlohmann::json::parse(read_text(f.tmp / "two" / "results.json"));
  for (auto* r : {&r1, &r2}) {
    r->erase("timing");
    r->erase("seconds");
  }
  EXPECT_EQ(r1, r2);
  // Row counts first: a rank that wrote extra (or lost) rows must fail, not be cut off.
  const auto p1 = lines_of(read_text(f.tmp / "one" / "predictions.jsonl"));
  const auto p2 = lines_of(read_text(f.tmp / "two" / "predictions.jsonl"));
  ASSERT_EQ(p1.size(), 27u);
  ASSERT_EQ(p2.size(), p1.size());
  for (size_t row = 0; row < p1.size(); ++row) {
    auto ja = nlohmann::json::parse(p1[row]), jb = nlohmann::json::parse(p2[row]);
    EXPECT_EQ(ja["index"], jb["index"]);
    EXPECT_EQ(ja["pred"], jb["pred"]);
    // Each pair runs in the batch one process would use: bit for bit.
    EXPECT_EQ(ja["probs"], jb["probs"]);
  }
}

TEST(DataParallel, LostRankFailsTheJobAndResumeCompletes) {
  Fixture f;
  const fs::path out = f.tmp / "run";
  const std::string args = f.finetune_args(out, 4) + " --save-every 2";
  const auto t0 = std::chrono::steady_clock::now();
  // Rank 1 SIGKILLs itself after step 3; the launcher names it and stops rank 0.
  const auto failed = run_command("XLT_TEST_KILL_RANK=1 XLT_TEST_KILL_STEP=3 " +
                                  shell_quote(cli_path().string()) + " launch -n 2 " + args);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_NE(failed.exit_code, 0);
  EXPECT_NE(failed.err.find("rank 1 (pid"), std::string::npos) << failed.err;
  EXPECT_NE(failed.err.find("killed by signal 9"), std::string::npos) << failed.err;
  EXPECT_LT(secs, 40);
  EXPECT_FALSE(fs::exists(out / "results.json"));

  const auto resumed = run_xlt("launch -n 2 " + args + " --resume");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  const auto r = nlohmann::json::parse(read_text(out / "results.json"));
  EXPECT_EQ(r["complete"], true);
  EXPECT_EQ(r["steps"], 6);
  // The interrupted-and-resumed run equals an uninterrupted single process.
  const auto single = run_xlt(f.finetune_args(f.tmp / "single", 8));
  ASSERT_EQ(single.exit_code, 0) << single.err;
  expect_same_weights(f.tmp / "single" / "last", out / "last", 1e-6);
  EXPECT_EQ(logged_losses(out / "log.jsonl").size(), 6u);
}

// Two ranks started by hand (no launcher to stop or name anyone), rank 1 made to fail after
// optimizer step 3 by `signal`. Returns rank 0's result and its wall time.
struct ByHand {
  CommandResult rank0;
  double seconds = 0;
};
ByHand run_by_hand(const Fixture& f, const fs::path& out, const std::string& signal, int timeout) {
  const int port = free_port();
  const std::string env =
      "WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=" + std::to_string(port) +
      " XLT_TEST_KILL_RANK=1 XLT_TEST_KILL_STEP=3 XLT_TEST_KILL_SIGNAL=" + signal + " ";
  const std::string cmd =
      shell_quote(cli_path().string()) + " " + f.finetune_args(out, 4, timeout) + " --save-every 2";
  const std::string pid = shell_quote((f.tmp / "rank1.pid").string());
  const auto t0 = std::chrono::steady_clock::now();
  // A stopped rank 1 stays behind: the shell kills it once rank 0 has returned.
  const auto r =
      run_command("RANK=1 " + env + cmd + " >/dev/null 2>&1 & echo $! > " + pid + "; RANK=0 " +
                  env + cmd + "; rc=$?; kill -9 $(cat " + pid + ") 2>/dev/null; exit $rc");
  return {r, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()};
}

// Without a launcher, the surviving rank notices the killed peer by itself (Gloo sees the
// connection close), names it from the store heartbeats and fails well within --dist-timeout;
// --resume then completes the run from the state saved at step 2.
TEST(DataParallel, SurvivingRankNamesTheKilledRankAndResumeCompletes) {
  Fixture f;
  const fs::path out = f.tmp / "run";
  const int timeout = 60;
  const auto r = run_by_hand(f, out, "KILL", timeout);
  EXPECT_EQ(r.rank0.exit_code, 3) << r.rank0.err;
  const std::string& err = r.rank0.err;
  EXPECT_NE(err.find("failed on rank 0 of 2 during "), std::string::npos) << err;
  EXPECT_NE(err.find(": rank 1 of 2 stopped responding"), std::string::npos) << err;
  EXPECT_NE(err.find("the run cannot continue; rerun the same command with --resume to continue "
                     "from step 2"),
            std::string::npos)
      << err;
  // Gloo sees the closed socket at once; the diagnosis takes ~2 s, two starts of the binary on a
  // busy machine several more (5-7 s in all on 2 cores); waiting for the timeout would take 60.
  EXPECT_LT(r.seconds, timeout - 15);
  EXPECT_FALSE(fs::exists(out / "results.json"));

  const auto resumed =
      run_xlt("launch -n 2 " + f.finetune_args(out, 4) + " --save-every 2 --resume");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  const auto res = nlohmann::json::parse(read_text(out / "results.json"));
  EXPECT_EQ(res["complete"], true);
  EXPECT_EQ(res["steps"], 6);
  EXPECT_EQ(logged_losses(out / "log.jsonl").size(), 6u);
}

// A hung peer (SIGSTOP: sockets stay open) is found only by --dist-timeout; the survivor then
// names it too, and fails within the timeout plus the ~2 s diagnosis.
TEST(DataParallel, SurvivingRankNamesAHungRankAfterTheTimeout) {
  Fixture f;
  const int timeout = 8;
  const auto r = run_by_hand(f, f.tmp / "run", "STOP", timeout);
  EXPECT_EQ(r.rank0.exit_code, 3) << r.rank0.err;
  EXPECT_NE(r.rank0.err.find(": rank 1 of 2 stopped responding"), std::string::npos) << r.rank0.err;
  EXPECT_GE(r.seconds, timeout);
  EXPECT_LT(r.seconds, timeout + 30);  // 11-15 s on 2 cores; a survivor that hung stays past it
}

}  // namespace
}  // namespace xlt::test
