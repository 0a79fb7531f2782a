// SIGKILL harness for `xlt study`: a tiny study (the crash-safety fixture's BERT checkpoint, a
// random demo XGLM, the synthetic marker task) with every stage enabled runs once uninterrupted;
// then, for several seeds, the same command is killed at seeded random times spread over the
// reference run's duration and rerun as is (a study resumes by itself, no flag) until it
// finishes. The output folder must then equal the uninterrupted run's file for file: every file
// byte for byte except the fields that record when and how long things ran (listed in
// `compare_trees`), the same set of files (no temp or pending file left under any name), and a
// report rendered from the final results.json. Also the two folder-state bugs such kills expose.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <map>
#include <random>
#include <set>

#include "common/process_util.h"
#include "train/train_test_util.h"
#include "xlt/report/study_report.h"

namespace xlt::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

class StudyCrashSafety : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(cli_path())) GTEST_SKIP() << "xlt binary not built: " << cli_path();
    const fs::path model = make_tiny_bert(tmp_ / "tiny");
    write_marker_task(tmp_ / "train.jsonl", 320, 1);
    write_marker_task(tmp_ / "dev-en.jsonl", 48, 2);
    for (const auto& [lang, seed] : std::map<std::string, int>{{"en", 3}, {"es", 4}, {"fr", 5}}) {
      write_marker_task(tmp_ / ("eval-" + lang + ".jsonl"), 60, static_cast<uint64_t>(seed));
    }
    const fs::path demo = demo_dir();
    auto q = [](const fs::path& p) { return json(p.string()).dump(); };
    // Every stage, two seeds, and both an init unit (the XGLM) and a checkpoint (the BERT), so
    // that kills land in every kind of unit.
    const std::string toml =
        "[study]\ntitle = \"crash safety\"\nlanguages = [\"en\", \"es\", \"fr\"]\n"
        "seeds = [1, 2]\nthreads = 1\n"
        "[encoder]\nmodel = " +
        q(model) + "\n[causal_lm]\ninit = " + q(demo / "xglm-config.json") +
        "\ntokenizer = " + q(demo / "xglm") + "\n[train]\ndata = " + q(tmp_ / "train.jsonl") +
        "\ndev = " + q(tmp_ / "dev-en.jsonl") +
        "\nsamples = 0\nepochs = 2\nlearning_rate = 2e-3\nbatch_size = 16\nmax_length = 32\n"
        "save_every = 4\n[eval]\nfiles = { en = " +
        q(tmp_ / "eval-en.jsonl") + ", es = " + q(tmp_ / "eval-es.jsonl") +
        ", fr = " + q(tmp_ / "eval-fr.jsonl") +
        " }\nsamples = 0\nbatch_size = 32\nmax_length = 32\nbootstrap_resamples = 200\n"
        "[analysis]\nparallel_file = " +
        q(demo / "parallel.tsv") +
        "\ntsne_iterations = 250\n[attention]\nmodel = \"encoder\"\nlayer = 2\n"
        "[perplexity]\ntexts = { en = " +
        q(demo / "text-en.txt") + ", es = " + q(demo / "text-es.txt") + " }\nmax_length = 64\n";
    write_text(tmp_ / "study.toml", toml);
  }
  std::vector<std::string> args() const {
    return {"study", (tmp_ / "study.toml").string(), "--out", (tmp_ / "out").string(), "--quiet"};
  }
  std::string args_line() const {
    std::string line;
    for (const auto& a : args()) line += (line.empty() ? "" : " ") + shell_quote(a);
    return line;
  }
  TempDir tmp_;
};

json read_json(const fs::path& p) {
  return json::parse(read_text(p));
}

// Every regular file under `dir`, relative.
std::set<std::string> files_under(const fs::path& dir) {
  std::set<std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) out.insert(fs::relative(e.path(), dir).string());
  }
  return out;
}

// The unit a child was in when it died: the last "run X" line of its log without "done X".
std::string unit_at_kill(const std::string& log) {
  std::string unit = "(startup)";
  std::istringstream in(log);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("run ", 0) == 0) unit = line.substr(4, line.find(':') - 4);
    if (line.rfind("done ", 0) == 0) unit = "(between units)";
  }
  return unit;
}

// Removes the value at `path` ("/a/*/b": "*" matches every key or element) from `j`.
void erase_path(json& j, const std::string& path) {
  const size_t slash = path.find('/', 1);
  const std::string head =
      path.substr(1, slash == std::string::npos ? std::string::npos : slash - 1);
  const std::string rest = slash == std::string::npos ? "" : path.substr(slash);
  if (rest.empty()) {
    if (j.is_object()) j.erase(head);
    return;
  }
  if (head == "*") {
    for (auto& v : j) erase_path(v, rest);
  } else if (j.is_object() && j.contains(head)) {
    erase_path(j[head], rest);
  }
}

// Every line of a JSON Lines file (or the whole file when `lines` is false), without `paths`.
std::vector<json> read_without(const fs::path& p, const std::vector<std::string>& paths,
                               bool lines = false) {
  std::vector<json> out;
  const std::string text = read_text(p);
  std::istringstream in(text);
  std::string line;
  while (lines ? static_cast<bool>(std::getline(in, line)) : out.empty()) {
    json j = json::parse(lines ? line : text);
    for (const auto& path : paths) erase_path(j, path);
    out.push_back(std::move(j));
  }
  return out;
}

// The values that record when and how long something ran, or whether it was resumed: the only
// differences allowed between an interrupted-and-rerun study and an uninterrupted one. Keyed by
// a file's relative path ("/x": exactly DIR/x; "y": any path ending in /y).
const std::vector<std::pair<std::string, std::vector<std::string>>>& volatile_fields() {
  static const std::vector<std::pair<std::string, std::vector<std::string>>> v = {
      // "timings": seconds per unit and status "ran"/"skipped"/"earlier run"
      {"/results.json", {"/generated", "/timings", "/perplexity/languages/*/seconds"}},
      {"stage.json",
       {"/seconds", "/finished", "/resumed", "/summary/train_seconds",
        "/summary/tokens_per_second"}},
      {"/study.json", {"/created"}},
      {"/perplexity/perplexity.json", {"/languages/*/seconds"}},
      {"run/train_config.json", {"/resumed_from_step"}},  // present after a resume
      {"run/results.json", {"/train/seconds", "/train/tokens_per_s"}},
      {"run/state/trainer_state.json", {"/train_seconds"}},  // summed over the runs
      {"run/log.jsonl", {"/tokens_per_s"}},                  // every record
      // An evaluation unit's (`xlt eval` layout): its timings.
      {"results.json", {"/seconds", "/timing/*/seconds", "/timing/*/pairs_per_s"}},
  };
  return v;
}

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// `killed` must equal the uninterrupted `ref`: the same files, and each byte for byte except
//   - the volatile_fields() of JSON files (the rest of the file equal),
//   - report.html, which shows the timings: it must equal the report rendered from the final
//     results.json (equal to ref's but for its volatile fields),
//   - tables/timings.csv: only its unit column is compared,
//   - lock files (pid, host and start time of the last holder): existence only.
void compare_trees(const fs::path& ref, const fs::path& killed, const std::string& what) {
  const auto ref_files = files_under(ref);
  const auto got_files = files_under(killed);
  EXPECT_EQ(ref_files, got_files) << what << ": different files";
  int compared = 0;
  for (const auto& rel : ref_files) {
    if (!got_files.count(rel)) continue;
    const fs::path a = ref / rel, b = killed / rel;
    ++compared;
    const auto vf =
        std::find_if(volatile_fields().begin(), volatile_fields().end(), [&rel](const auto& e) {
          return e.first[0] == '/' ? "/" + rel == e.first : ends_with("/" + rel, "/" + e.first);
        });
    if (vf != volatile_fields().end()) {
      const bool lines = ends_with(rel, ".jsonl");
      const auto ja = read_without(a, vf->second, lines), jb = read_without(b, vf->second, lines);
      EXPECT_TRUE(ja == jb) << what << ": " << rel << " differs: "
                            << (ja.size() == jb.size() && !ja.empty()
                                    ? json::diff(ja[0], jb[0]).dump().substr(0, 2000)
                                    : "line counts differ");
    } else if (rel == "report.html") {
      EXPECT_TRUE(read_text(b) ==
                  report::render_study_report(read_json(killed / "results.json")).html)
          << what << ": report.html is not the report of the final results.json";
    } else if (rel == "tables/timings.csv") {
      auto first_column = [](const std::string& csv) {
        std::vector<std::string> col;
        std::istringstream in(csv);
        for (std::string line; std::getline(in, line);) {
          col.push_back(line.substr(0, line.find(',')));
        }
        return col;
      };
      EXPECT_EQ(first_column(read_text(a)), first_column(read_text(b))) << what << ": " << rel;
    } else if (fs::path(rel).filename().string().find(".lock") == std::string::npos) {
      // Weights (safetensors), predictions, per-unit results and CSVs, analysis, attention,
      // figures, the resolved config, tokenizer copies: byte for byte.
      EXPECT_TRUE(read_text(a) == read_text(b)) << what << ": " << rel << " differs";
    }
  }
  EXPECT_GT(compared, 40) << what;
}

TEST_F(StudyCrashSafety, SigkillAtRandomTimesThenRerunEqualsAnUninterruptedRun) {
  const auto t0 = std::chrono::steady_clock::now();
  Child ref = spawn_xlt(args(), tmp_.path());
  auto rs = wait_child(ref);
  ASSERT_EQ(rs.exit_code, 0) << rs.err;
  const double ref_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  fs::rename(tmp_ / "out", tmp_ / "ref");
  ASSERT_TRUE(fs::exists(tmp_ / "ref" / "report.html"));
  std::cerr << "[ uninterrupted study: " << ref_seconds << " s ]\n" << rs.err;

  std::map<std::string, int> kills_by_unit;
  int total_kills = 0;
  const int kMaxKills = 3;  // per seed
  for (uint32_t seed : {1u, 2u, 3u, 4u, 5u}) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<double> when(0.02, 0.98);
    int kills = 0;
    bool finished = false;
    for (int attempt = 0; attempt < 12 && !finished; ++attempt) {
      Child c = spawn_xlt(args(), tmp_.path());
      if (kills < kMaxKills) {
        // A time anywhere in an uninterrupted run; a rerun skips finished units and may end
        // before it (then nothing is killed).
        const auto at = std::chrono::duration<double>(when(rng) * ref_seconds);
        const auto start = std::chrono::steady_clock::now();
        wait_until(
            [&] { return !child_running(c) || std::chrono::steady_clock::now() - start >= at; },
            std::chrono::seconds(600));
        if (kill_if_running(c)) ++kills;
      }
      auto s = wait_child(c);
      if (s.exited) {
        ASSERT_EQ(s.exit_code, 0) << "seed " << seed << " attempt " << attempt << ": " << s.err;
        finished = kills > 0;
        // The draw came after this run's end (runs vary in speed): start over, draw again.
        if (!finished) fs::remove_all(tmp_ / "out");
      } else {
        ASSERT_EQ(s.signal, SIGKILL) << s.err;
        ++kills_by_unit[unit_at_kill(s.err)];
      }
    }
    ASSERT_TRUE(finished) << "seed " << seed << " did not finish after at least one kill";
    total_kills += kills;
    EXPECT_TRUE(temp_leftovers(tmp_ / "out").empty())
        << ::testing::PrintToString(temp_leftovers(tmp_ / "out"));
    compare_trees(tmp_ / "ref", tmp_ / "out", "seed " + std::to_string(seed));
    std::cerr << "seed " << seed << ": " << kills << " SIGKILLs, same results as uninterrupted\n";
    fs::remove_all(tmp_ / "out");
  }
  std::string where;
  for (const auto& [unit, n] : kills_by_unit) where += " " + unit + " x" + std::to_string(n);
  std::cerr << "[ " << total_kills << " SIGKILLs in:" << where << "; harness "
            << std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()
            << " s ]\n";
}

// Ctrl-C during an evaluation unit (it ended the process without a word, the unit redone on the
// next run): the unit completes, the study stops after it with exit 130 and says how to go on,
// and the rerun skips it.
TEST_F(StudyCrashSafety, CtrlCInAnEvaluationUnitStopsTheStudyAfterIt) {
  // The study, with a SIGINT raised as `unit` begins.
  auto signalled_in = [this](const std::string& unit) {
    return run_command("XLT_TEST_SIGNAL_IN_UNIT=" + unit + " " + shell_quote(cli_path().string()) +
                       " " + args_line());
  };
  const auto stopped = signalled_in("baseline/seed-1");
  EXPECT_EQ(stopped.exit_code, 128 + SIGINT) << stopped.err;
  EXPECT_NE(stopped.err.find("interrupt received: stopping at the next safe point"),
            std::string::npos)
      << stopped.err;
  EXPECT_NE(stopped.err.find("xlt study: stopped by SIGINT after baseline/seed-1 (complete). To "
                             "continue, run the same command"),
            std::string::npos)
      << stopped.err;
  EXPECT_TRUE(fs::exists(tmp_ / "out" / "baseline" / "seed-1" / "stage.json"));
  EXPECT_TRUE(lines_starting(stopped.err, "run baseline/seed-2").empty()) << stopped.err;
  EXPECT_FALSE(fs::exists(tmp_ / "out" / "results.json"));
  EXPECT_TRUE(temp_leftovers(tmp_ / "out").empty());
  const auto rerun = run_xlt(args_line());
  ASSERT_EQ(rerun.exit_code, 0) << rerun.err;
  EXPECT_NE(rerun.err.find("skip baseline/seed-1: up to date"), std::string::npos) << rerun.err;
  EXPECT_TRUE(fs::exists(tmp_ / "out" / "results.json"));

  // Ctrl-C while a fine-tuning unit loads its data (the trainer's own scope opens later and used
  // to forget it): the unit stops at its first step with its state saved.
  fs::remove_all(tmp_ / "out" / "finetune");
  const auto ft = signalled_in("finetune/seed-1");
  EXPECT_EQ(ft.exit_code, 128 + SIGINT) << ft.err;
  EXPECT_NE(ft.err.find("xlt study: stopped by SIGINT in finetune/seed-1 at step 1/"),
            std::string::npos)
      << ft.err;

  // Ctrl-C during the last unit: nothing is left to stop, the study is complete (exit 0).
  ASSERT_EQ(run_xlt(args_line()).exit_code, 0);
  fs::remove_all(tmp_ / "out" / "report");
  fs::remove(tmp_ / "out" / "results.json");
  const auto last = signalled_in("report");
  EXPECT_EQ(last.exit_code, 0) << last.err;
  EXPECT_NE(last.err.find("the last unit: the study is complete"), std::string::npos) << last.err;
  EXPECT_TRUE(fs::exists(tmp_ / "out" / "results.json"));
}

// SIGTERM (a scheduler's stop; Ctrl-C takes the same path) while a seed fine-tunes: the trainer
// stops after the step it is on and saves its state; the study must then stop too, exit 143 and
// say how to continue, instead of marking the half-trained unit done and evaluating it. The
// rerun resumes that unit and ends equal to an uninterrupted run. The signal comes from the test
// hook at a known step, so the test does not race the (fast) tiny training.
TEST_F(StudyCrashSafety, SigtermInFineTuningStopsTheStudyAndTheRerunResumesIt) {
  auto ref = run_xlt(args_line());
  ASSERT_EQ(ref.exit_code, 0) << ref.err;
  fs::rename(tmp_ / "out", tmp_ / "ref");

  const auto stopped =
      run_command("XLT_TEST_KILL_RANK=0 XLT_TEST_KILL_STEP=3 XLT_TEST_KILL_SIGNAL=TERM " +
                  shell_quote(cli_path().string()) + " " + args_line());
  EXPECT_EQ(stopped.exit_code, 128 + SIGTERM) << stopped.err;
  EXPECT_NE(stopped.err.find("stopped finetune/seed-1 at step 3/40"), std::string::npos)
      << stopped.err;
  EXPECT_NE(stopped.err.find("xlt study: stopped by SIGTERM in finetune/seed-1 at step 3/40"),
            std::string::npos)
      << stopped.err;
  EXPECT_NE(stopped.err.find("run the same command"), std::string::npos) << stopped.err;
  const fs::path unit = tmp_ / "out" / "finetune" / "seed-1";
  EXPECT_FALSE(fs::exists(unit / "stage.json")) << "a stopped fine-tuning counted as done";
  EXPECT_TRUE(fs::exists(unit / "pending.json"));
  EXPECT_EQ(read_json(unit / "run" / "state" / "trainer_state.json")["global_step"], 3);
  // Nothing after it ran: no zero-shot evaluation of the half-trained model, no report.
  EXPECT_TRUE(lines_starting(stopped.err, "run zero_shot").empty()) << stopped.err;
  EXPECT_FALSE(fs::exists(tmp_ / "out" / "zero_shot"));
  EXPECT_FALSE(fs::exists(tmp_ / "out" / "results.json"));
  EXPECT_TRUE(temp_leftovers(tmp_ / "out").empty());

  const auto plan = run_xlt(args_line() + " --dry-run");
  ASSERT_EQ(plan.exit_code, 0) << plan.err;
  EXPECT_NE(plan.out.find("resumes from its last saved state"), std::string::npos) << plan.out;

  // The stopped study moved to another folder and named by a relative --out resumes there too:
  // the unit's fingerprint holds digests, not paths (the trainer refused the moved model path).
  fs::copy(tmp_ / "out", tmp_ / "moved", fs::copy_options::recursive);
  const auto moved = run_command("cd " + shell_quote(tmp_.path().string()) + " && " +
                                 shell_quote(cli_path().string()) +
                                 " study study.toml --out moved --quiet --stages finetune");
  ASSERT_EQ(moved.exit_code, 0) << moved.err;
  EXPECT_NE(moved.err.find("run finetune/seed-1: incomplete"), std::string::npos) << moved.err;
  const auto moved_stage = read_json(tmp_ / "moved" / "finetune" / "seed-1" / "stage.json");
  EXPECT_TRUE(moved_stage["resumed"].get<bool>());
  EXPECT_FALSE(fs::exists(tmp_ / "moved" / "finetune" / "seed-1" / "pending.json"));
  fs::remove_all(tmp_ / "moved");

  // What a SIGKILL between writing the unit's stage.json temp file and renaming it leaves (the
  // window is too short for the random kills to hit often; CI's did once). The resumed unit keeps
  // its folder, so nothing else removed it.
  const fs::path stage_temp = unit / ".stage.json.tmp.99999.0.dead";
  write_text(stage_temp, "{\"sec");
  const auto rerun = run_xlt(args_line());
  ASSERT_EQ(rerun.exit_code, 0) << rerun.err;
  EXPECT_NE(rerun.err.find("run finetune/seed-1: incomplete"), std::string::npos) << rerun.err;
  EXPECT_FALSE(fs::exists(stage_temp));
  EXPECT_TRUE(read_json(unit / "stage.json")["resumed"].get<bool>());
  compare_trees(tmp_ / "ref", tmp_ / "out", "SIGTERM at step 3");

  // The signal in the last step: the unit completes (final evaluation, saves), then the study
  // stops before the next unit; the rerun goes on from there.
  fs::remove_all(tmp_ / "out");
  const auto last =
      run_command("XLT_TEST_KILL_RANK=0 XLT_TEST_KILL_STEP=40 XLT_TEST_KILL_SIGNAL=TERM " +
                  shell_quote(cli_path().string()) + " " + args_line());
  EXPECT_EQ(last.exit_code, 128 + SIGTERM) << last.err;
  EXPECT_NE(last.err.find("xlt study: stopped by SIGTERM after finetune/seed-1 (complete)"),
            std::string::npos)
      << last.err;
  EXPECT_TRUE(fs::exists(unit / "stage.json"));
  EXPECT_FALSE(fs::exists(tmp_ / "out" / "finetune" / "seed-2"));
  // What a SIGKILL after the unit's stage.json but before its pending record went leaves.
  write_text(unit / "pending.json", read_text(tmp_ / "out" / "finetune" / "seed-1" / "stage.json"));
  const auto on = run_xlt(args_line());
  ASSERT_EQ(on.exit_code, 0) << on.err;
  EXPECT_NE(on.err.find("skip finetune/seed-1: up to date"), std::string::npos) << on.err;
  EXPECT_FALSE(fs::exists(unit / "pending.json"));
  compare_trees(tmp_ / "ref", tmp_ / "out", "SIGTERM at the last step");
}

// Regression: a run killed after taking the lock but before study.json was renamed into place
// left a folder holding only `.xlt-study.lock` (and a study.json temp file); the rerun refused
// it as "not an xlt study folder". And temp files of top-level writes (results.json,
// report.html, ...) were never removed. Both states are made by hand here: the kill windows are
// too short for random kills to hit reliably.
TEST_F(StudyCrashSafety, KilledBeforeStudyJsonOrInATopLevelWriteRerunsCleanly) {
  const fs::path out = tmp_ / "out";
  fs::create_directories(out);
  write_text(out / ".xlt-study.lock", "pid 4242 on host since 2026-01-01T00:00:00Z\n");
  write_text(out / ".study.json.tmp.4242.0.deadbeef", "{\"xlt_st");
  Child c = spawn_xlt(args(), tmp_.path());
  auto s = wait_child(c);
  ASSERT_EQ(s.exit_code, 0) << s.err;
  EXPECT_EQ(read_json(out / "study.json")["xlt_study"], 1);
  EXPECT_TRUE(fs::exists(out / "report.html"));
  EXPECT_TRUE(temp_leftovers(out).empty()) << ::testing::PrintToString(temp_leftovers(out));

  // Killed while writing the top-level files: the temps go, the up-to-date units are kept.
  write_text(out / ".results.json.tmp.4243.3.cafe", "{");
  write_text(out / ".report.html.tmp.4243.4.f00d", "<!DOCTYPE");
  c = spawn_xlt(args(), tmp_.path());
  s = wait_child(c);
  ASSERT_EQ(s.exit_code, 0) << s.err;
  EXPECT_EQ(s.err.find("\nrun "), std::string::npos) << s.err;
  EXPECT_NE(s.err.find("skip report: up to date"), std::string::npos) << s.err;
  EXPECT_TRUE(temp_leftovers(out).empty()) << ::testing::PrintToString(temp_leftovers(out));

  // A folder with anything else besides the lock is still somebody else's.
  const fs::path foreign = tmp_ / "foreign";
  fs::create_directories(foreign);
  write_text(foreign / ".xlt-study.lock", "");
  write_text(foreign / "thesis.tex", "precious");
  auto a = args();
  a[3] = foreign.string();
  c = spawn_xlt(a, tmp_.path());
  s = wait_child(c);
  EXPECT_EQ(s.exit_code, 1) << s.err;
  EXPECT_NE(s.err.find("is not an xlt study folder"), std::string::npos) << s.err;
  EXPECT_TRUE(fs::exists(foreign / "thesis.tex"));
}

}  // namespace
}  // namespace xlt::test
