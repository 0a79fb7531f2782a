// End-to-end tests of `xlt study` on the offline demo (examples/demo.toml, random tiny BERT and
// XGLM): the whole pipeline runs, results.json validates against docs/results-schema.json, a
// rerun skips everything, deleting one stage reruns only that stage, an interrupted fine-tuning
// resumes, config mistakes fail before any work (exit 2), foreign and locked output folders are
// refused, the report renders in headless Chromium, and examples/notebook.cpp runs.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <unistd.h>

#include <chrono>
#include <regex>

#include "common/test_env.h"
#include "report/browser_check.h"
#include "xlt/core/file.h"
#include "xlt/report/json_schema.h"

namespace xlt::study {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using test::lines_starting;
using test::shell_quote;

// A private copy of the demo (config + data), so tests can edit the config.
class DemoStudy : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(tmp_ / "src");
    fs::copy(test::source_dir() / "examples" / "demo", tmp_ / "src" / "demo",
             fs::copy_options::recursive);
    fs::copy_file(test::source_dir() / "examples" / "demo.toml", tmp_ / "src" / "demo.toml");
  }
  test::CommandResult study(const std::string& args) {
    return test::run_xlt("study " + args + " --quiet");
  }
  std::string config() const { return shell_quote((tmp_ / "src" / "demo.toml").string()); }
  std::string out() const { return shell_quote((tmp_ / "out").string()); }
  void write_config(const std::string& extra_toml) {
    const std::string base = read_file(test::source_dir() / "examples" / "demo.toml");
    test::write_text(tmp_ / "src" / "demo.toml", base + extra_toml);
  }
  test::TempDir tmp_;
};

TEST_F(DemoStudy, RunsEndToEndResumesAndSkips) {
  const auto t0 = std::chrono::steady_clock::now();
  const auto r = study(config() + " --out " + out());
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::cerr << "[ demo study: " << seconds << " s ]\n";
  const fs::path o = tmp_ / "out";
  EXPECT_NE(r.out.find("report: " + (o / "report.html").string()), std::string::npos) << r.out;
  // Units: 2 init + 2 seeds x (baseline, finetune, zero_shot) + analysis, attention,
  // perplexity, report.
  EXPECT_EQ(lines_starting(r.err, "run ").size(), 12u) << r.err;
  for (const char* unit : {"init/encoder", "init/causal_lm", "baseline/seed-1", "finetune/seed-2",
                           "zero_shot/seed-1", "analysis", "attention", "perplexity", "report"}) {
    EXPECT_TRUE(fs::exists(o / unit / "stage.json")) << unit;
  }
  // results.json: schema and content.
  const json results = json::parse(read_file(o / "results.json"));
  const json schema = json::parse(read_file(test::source_dir() / "docs" / "results-schema.json"));
  for (const auto& e : report::validate_json(results, schema)) {
    ADD_FAILURE() << "results.json" << e.path << ": " << e.message;
  }
  // Each evaluation unit's results.json is in `xlt eval`'s layout (docs/study.md says so).
  const json eval_schema =
      json::parse(read_file(test::source_dir() / "docs" / "eval-results-schema.json"));
  for (const char* unit : {"baseline/seed-1", "zero_shot/seed-2"}) {
    const json u = json::parse(read_file(o / unit / "results.json"));
    for (const auto& e : report::validate_json(u, eval_schema)) {
      ADD_FAILURE() << unit << "/results.json" << e.path << ": " << e.message;
    }
    EXPECT_EQ(u["head_initialized"], std::string(unit).rfind("baseline", 0) == 0) << unit;
    EXPECT_EQ(u["data"]["hi"]["n"], 60) << unit;
    EXPECT_EQ(u["timing"]["hi"]["truncated"], 0) << unit;
  }
  EXPECT_EQ(json::parse(read_file(o / "zero_shot/seed-2/results.json"))["model"]["path"],
            (o / "finetune" / "seed-2" / "run" / "best").string());
  EXPECT_EQ(results["baseline"]["languages"].size(), 4u);
  EXPECT_EQ(results["zero_shot"]["languages"]["es"]["n"], 60);
  EXPECT_EQ(results["zero_shot"]["languages"]["es"]["across_seeds"]["n"], 2);
  EXPECT_TRUE(results["study"]["encoder"]["randomly_initialized"].get<bool>());
  EXPECT_EQ(results["transfer_gap"]["correlation"]["n"], 3);
  EXPECT_FALSE(results["transfer_gap"]["correlation"]["meaningful"].get<bool>());
  EXPECT_EQ(results["analysis"]["alignment"]["sentences"], 82);
  EXPECT_EQ(results["analysis"]["tsne"]["before"]["points"].size(), 12u);
  EXPECT_EQ(results["attention"]["pair"].size(), 2u);
  EXPECT_EQ(results["perplexity"]["languages"].size(), 4u);
  // The gap is the difference of the zero-shot accuracies (first seed, then the mean).
  const json& z = results["zero_shot"]["runs"][0]["results"]["languages"];
  EXPECT_NEAR(z["es"]["transfer_gap"]["gap"].get<double>(),
              z["en"]["accuracy"].get<double>() - z["es"]["accuracy"].get<double>(), 1e-12);
  // Figures, tables, report.
  for (const char* f : {"accuracy", "transfer_gap_distance", "tsne_before", "tsne_after",
                        "alignment_before", "alignment_after", "attention", "perplexity"}) {
    EXPECT_TRUE(fs::exists(o / "figures" / (std::string(f) + ".svg"))) << f;
  }
  EXPECT_TRUE(fs::exists(o / "tables" / "accuracy.csv"));
  const std::string html = read_file(o / "report.html");
  EXPECT_NE(html.find("RANDOMLY INITIALISED"), std::string::npos);
  EXPECT_EQ(test::count_substr(html, "<svg"), 8);
  // A shared report shows no path of this machine (issue #19): not the study's folder, the
  // checkout, $HOME or /tmp; the config's relative paths instead. results.json keeps them.
  for (const std::string& absolute :
       {tmp_.path().string(), test::source_dir().string(), std::string("/tmp/"),
        std::string(std::getenv("HOME") ? std::getenv("HOME") : "/root") + "/"}) {
    EXPECT_EQ(html.find(absolute), std::string::npos) << absolute;
  }
  for (const char* relative :
       {"demo/text-en.txt", "demo/text-hi.txt", "parallel.tsv", "configuration file: demo.toml",
        "demo/train-en.jsonl", "&lt;out&gt;/init/encoder"}) {
    EXPECT_NE(html.find(relative), std::string::npos) << relative;
  }
  EXPECT_EQ(results["perplexity"]["languages"]["en"]["source"],
            (tmp_ / "src" / "demo" / "text-en.txt").string());

  // Rerun: everything is up to date.
  auto again = study(config() + " --out " + out());
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_TRUE(lines_starting(again.err, "run ").empty()) << again.err;
  EXPECT_EQ(lines_starting(again.err, "skip ").size(), 12u) << again.err;
  EXPECT_NE(again.err.find("skip finetune/seed-1: up to date"), std::string::npos);

  // Deleting one stage's output reruns only that stage (the report's inputs are unchanged).
  fs::remove_all(o / "attention");
  again = study(config() + " --out " + out());
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(lines_starting(again.err, "run "),
            std::vector<std::string>{"run attention: not run yet"})
      << again.err;
  EXPECT_NE(again.err.find("skip report: up to date"), std::string::npos) << again.err;

  // An interrupted fine-tuning (stage.json missing, its pending record present) resumes.
  const json rec = json::parse(read_file(o / "finetune" / "seed-2" / "stage.json"));
  fs::remove(o / "finetune" / "seed-2" / "stage.json");
  test::write_text(o / "finetune" / "seed-2" / "pending.json",
                   json({{"fingerprint", rec["fingerprint"]}}).dump());
  const auto plan = study(config() + " --out " + out() + " --dry-run");
  ASSERT_EQ(plan.exit_code, 0) << plan.err;
  EXPECT_TRUE(std::regex_search(
      plan.out, std::regex("run +finetune/seed-2 +incomplete: an earlier run stopped; resumes")))
      << plan.out;
  // A partial run of other inputs is not resumed, and the plan does not promise it.
  test::write_text(o / "finetune" / "seed-2" / "pending.json",
                   json({{"fingerprint", "other inputs"}}).dump());
  const auto other = study(config() + " --out " + out() + " --dry-run");
  EXPECT_TRUE(std::regex_search(
      other.out, std::regex("run +finetune/seed-2 +incomplete: an earlier run stopped with other "
                            "inputs \\(or without a saved state\\); starts over")))
      << other.out;
  test::write_text(o / "finetune" / "seed-2" / "pending.json",
                   json({{"fingerprint", rec["fingerprint"]}}).dump());
  again = study(config() + " --out " + out() + " --stages finetune,attention");
  ASSERT_EQ(again.exit_code, 0) << again.err;
  const json resumed = json::parse(read_file(o / "finetune" / "seed-2" / "stage.json"));
  EXPECT_TRUE(resumed["resumed"].get<bool>());
  EXPECT_EQ(resumed["fingerprint"], rec["fingerprint"]);

  // A changed input reruns what depends on it, and the plan says why.
  write_config("\n[distance]\nmeasure = \"genetic\"\n");
  const auto changed = study(config() + " --out " + out() + " --dry-run");
  ASSERT_EQ(changed.exit_code, 0) << changed.err;
  EXPECT_TRUE(
      std::regex_search(changed.out, std::regex("run +report +inputs changed: distance.measure\n")))
      << changed.out;
  EXPECT_TRUE(std::regex_search(changed.out, std::regex("skip +zero_shot/seed-1 +up to date")))
      << changed.out;
  // A report rebuilt alone (--stages report) after a change that makes the fine-tuning runs out
  // of date shows their earlier numbers, and says so; a run without the report stage prints no
  // summary of the folder's earlier results.json as if it were its own.
  test::write_text(tmp_ / "src" / "demo.toml",
                   std::regex_replace(read_file(test::source_dir() / "examples" / "demo.toml"),
                                      std::regex("epochs = 20"), "epochs = 21"));
  const auto stale = study(config() + " --out " + out() + " --stages report");
  ASSERT_EQ(stale.exit_code, 0) << stale.err;
  const json rebuilt = json::parse(read_file(o / "results.json"));
  const std::string notes = rebuilt["study"]["notes"].dump();
  EXPECT_NE(notes.find("OUT OF DATE: finetune/seed-1, finetune/seed-2, zero_shot/seed-1, "
                       "zero_shot/seed-2, analysis did not run again"),
            std::string::npos)
      << notes;
  bool marked = false;
  for (const auto& t : rebuilt["timings"]) {
    if (t["unit"] == "finetune/seed-1") marked = t["status"] == "earlier run, out of date";
  }
  EXPECT_TRUE(marked) << rebuilt["timings"].dump();
  for (const auto& e : report::validate_json(rebuilt, schema)) {
    ADD_FAILURE() << "results.json" << e.path << ": " << e.message;
  }
  EXPECT_NE(read_file(o / "report.html").find("OUT OF DATE: finetune/seed-1"), std::string::npos);
  EXPECT_NE(stale.err.find("xlt study: warning: OUT OF DATE: finetune/seed-1"), std::string::npos)
      << stale.err;
  fs::remove_all(o / "report");
  const auto no_report = study(config() + " --out " + out() + " --stages baseline");
  ASSERT_EQ(no_report.exit_code, 0) << no_report.err;
  EXPECT_EQ(no_report.out, "") << no_report.out;
  EXPECT_NE(no_report.err.find("the report was not rebuilt"), std::string::npos) << no_report.err;
  write_config("");

  // train.bf16: false (the default, spelled out) keeps the fine-tuning runs; true reruns them
  // (planned here for a GPU: a dry run touches no device).
  const std::string demo = read_file(test::source_dir() / "examples" / "demo.toml");
  for (const char* value : {"false", "true"}) {
    test::write_text(tmp_ / "src" / "demo.toml",
                     std::regex_replace(demo, std::regex("save_every = 10"),
                                        std::string("save_every = 10\nbf16 = ") + value));
    const auto bf16 = study(config() + " --out " + out() + " --dry-run --device cuda");
    ASSERT_EQ(bf16.exit_code, 0) << bf16.err;
    const std::string want = std::string(value) == "true"
                                 ? "run +finetune/seed-1 +inputs changed: train.bf16\n"
                                 : "skip +finetune/seed-1 +up to date\n";
    EXPECT_TRUE(std::regex_search(bf16.out, std::regex(want))) << value << "\n" << bf16.out;
  }

  // The report in a real browser.
  if (fs::exists(test::kChromium) || test::in_ci()) {
    XLT_REQUIRE_CHROMIUM();
    fs::create_directories(tmp_ / "browser");
    const auto page = test::load_in_browser(o / "report.html", tmp_ / "browser");
    ASSERT_EQ(page.error, "");
    EXPECT_EQ(test::count_substr(page.dom, "<svg"), 8);
    EXPECT_EQ(test::count_substr(page.console, "Uncaught"), 0) << page.console;
    EXPECT_EQ(test::count_substr(page.console, "ERROR:CONSOLE"), 0) << page.console;
  }
}

TEST_F(DemoStudy, ConfigMistakesFailBeforeAnyWork) {
  struct Case {
    std::string toml, expect;
  };
  const std::vector<Case> cases = {
      {"\n[distance]\nmesure = \"genetic\"\n", "unknown key 'distance.mesure'"},
      {"\n[distance]\nmeasure = \"lexical\"\n", "distance.measure: the built-in table has"},
      {"\n[distance]\nfile = \"demo/none.tsv\"\n", "distance.file: file not found: "},
  };
  for (const auto& c : cases) {
    write_config(c.toml);
    const auto r = study(config() + " --out " + out());
    EXPECT_EQ(r.exit_code, 2) << c.toml << r.err;
    EXPECT_NE(r.err.find(c.expect), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("demo.toml:"), std::string::npos) << r.err;  // names the file:line
    EXPECT_FALSE(fs::exists(tmp_ / "out")) << "work started for " << c.toml;
  }
  // Unusable evaluation data (no labels) is caught before anything runs.
  write_config("");
  test::write_text(tmp_ / "src" / "demo" / "dev-es.tsv", "A premise.\tA hypothesis.\n");
  auto bad = study(config() + " --out " + out());
  EXPECT_EQ(bad.exit_code, 2) << bad.err;
  EXPECT_NE(bad.err.find("dev-es.tsv: evaluation data for 'es' has unlabelled rows"),
            std::string::npos)
      << bad.err;
  EXPECT_FALSE(fs::exists(tmp_ / "out"));
  // bf16 fine-tuning on the CPU: refused before anything runs (with --dry-run too).
  const std::string base = read_file(test::source_dir() / "examples" / "demo.toml");
  test::write_text(
      tmp_ / "src" / "demo.toml",
      std::regex_replace(base, std::regex("save_every = 10"), "save_every = 10\nbf16 = true"));
  for (const char* extra : {"", " --dry-run"}) {
    const auto b = study(config() + " --out " + out() + extra);
    EXPECT_EQ(b.exit_code, 2) << b.err;
    EXPECT_NE(b.err.find("train.bf16 = true is bf16 autocast on a GPU; this study runs on cpu"),
              std::string::npos)
        << b.err;
    EXPECT_FALSE(fs::exists(tmp_ / "out"));
  }
  // A layer the model does not have: caught against its config before anything runs.
  const std::string demo = read_file(test::source_dir() / "examples" / "demo.toml");
  test::write_text(tmp_ / "src" / "demo.toml",
                   std::regex_replace(demo, std::regex("layer = 2 "), "layer = 12 "));
  const auto r = study(config() + " --out " + out());
  EXPECT_EQ(r.exit_code, 2) << r.err;
  // FILE:LINE of the key, as for the checks made while reading.
  EXPECT_NE(r.err.find("demo.toml:53: attention.layer = 12, but random xglm-config.json has 2 "
                       "layers"),
            std::string::npos)
      << r.err;
  EXPECT_FALSE(fs::exists(tmp_ / "out"));

  // A tokenizer with more tokens than the model's vocab_size (another model's tokenizer):
  // refused at the config's tokenizer key before anything runs, dry run included.
  write_config("");
  const fs::path bert = tmp_ / "src" / "demo" / "bert-config.json";
  const std::string bert_json = read_file(bert);
  test::write_text(bert, std::regex_replace(bert_json, std::regex("\"vocab_size\": 1423"),
                                            "\"vocab_size\": 1000"));
  for (const char* extra : {"", " --dry-run"}) {
    const auto t = study(config() + " --out " + out() + extra);
    EXPECT_EQ(t.exit_code, 2) << t.err;
    EXPECT_NE(t.err.find("demo.toml:20: encoder.tokenizer: "), std::string::npos) << t.err;
    EXPECT_NE(t.err.find(" has 1423 tokens but random bert-config.json has vocab_size 1000: it "
                         "is not this model's tokenizer"),
              std::string::npos)
        << t.err;
    EXPECT_FALSE(fs::exists(tmp_ / "out"));
  }
  test::write_text(bert, bert_json);
  // A model folder whose own tokenizer does not fit its config.json: named as an inconsistent
  // folder, at encoder.model.
  const fs::path mixed = tmp_ / "mixed";
  ASSERT_EQ(test::run_xlt("init-model --arch bert --config " + shell_quote(bert.string()) +
                          " --num-labels 3 --out " + shell_quote(mixed.string()))
                .exit_code,
            0);
  test::write_text(mixed / "vocab.txt", read_file(mixed / "vocab.txt") + "zzextra\n");
  test::write_text(
      tmp_ / "src" / "demo.toml",
      std::regex_replace(read_file(test::source_dir() / "examples" / "demo.toml"),
                         std::regex("\\[encoder\\]\ninit = [^\n]*\ntokenizer = [^\n]*"),
                         "[encoder]\nmodel = \"" + mixed.string() + "\""));
  const auto own = study(config() + " --out " + out());
  EXPECT_EQ(own.exit_code, 2) << own.err;
  EXPECT_NE(own.err.find("demo.toml:19: encoder.model: the tokenizer in " + mixed.string() +
                         " has 1424 tokens but "),
            std::string::npos)
      << own.err;
  EXPECT_NE(own.err.find("the folder mixes files of different models"), std::string::npos)
      << own.err;
  EXPECT_FALSE(fs::exists(tmp_ / "out"));

  // Input files of the later stages (perplexity texts, the parallel file) are read before any
  // unit runs too: a bad byte fails the study at once, naming the file and line, not after the
  // fine-tuning.
  write_config("");
  fs::copy_file(test::source_dir() / "examples" / "demo" / "dev-es.tsv",
                tmp_ / "src" / "demo" / "dev-es.tsv", fs::copy_options::overwrite_existing);
  for (const char* file : {"text-es.txt", "parallel.tsv"}) {
    const fs::path f = tmp_ / "src" / "demo" / file;
    const std::string good = read_file(f);
    const auto lines = test::lines_of(good).size();
    test::write_text(f, good + "hola \xff mundo\n");
    const auto u = study(config() + " --out " + out());
    EXPECT_EQ(u.exit_code, 2) << u.err;
    EXPECT_NE(u.err.find(std::string(file) + ":" + std::to_string(lines + 1) +
                         ": invalid UTF-8 at byte 5"),
              std::string::npos)
        << u.err;
    EXPECT_TRUE(lines_starting(u.err, "run ").empty()) << u.err;
    EXPECT_FALSE(fs::exists(tmp_ / "out"));
    test::write_text(f, good);
  }

  // Evaluation files that no selected stage needs may be missing, and they resolve against the
  // config's folder from any working folder (the plan read them relative to the working folder).
  std::string only_attention = std::regex_replace(
      read_file(test::source_dir() / "examples" / "demo.toml"), std::regex("seeds = \\[1, 2\\]"),
      "seeds = [1, 2]\nstages = [\"attention\", \"report\"]");
  only_attention =
      std::regex_replace(only_attention, std::regex("demo/dev-fr.tsv"), "demo/none-fr.tsv");
  test::write_text(tmp_ / "src" / "demo.toml", only_attention);
  const auto plan =
      test::run_command("cd / && " + shell_quote(test::cli_path().string()) + " study " + config() +
                        " --out " + out() + " --dry-run --quiet");
  EXPECT_EQ(plan.exit_code, 0) << plan.err;
  EXPECT_NE(plan.out.find("attention"), std::string::npos) << plan.out;
}

// --stages/--overwrite/--device mistakes are refused before the folder or any unit is made:
// --overwrite with --stages used to delete every finished unit and rerun only the selected ones
// (exit 0), a stage outside study.stages ran nothing (exit 0), and a bad device failed in the
// first baseline unit after the init units had run.
TEST_F(DemoStudy, StageAndDeviceMistakesFailBeforeAnyWork) {
  const std::string base = read_file(test::source_dir() / "examples" / "demo.toml");
  for (const char* extra : {"", " --dry-run"}) {
    auto r = study(config() + " --out " + out() + " --overwrite --stages report" + extra);
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_NE(r.err.find("--overwrite empties the output folder and runs every stage again; "
                         "with --stages the other stages' results would be deleted"),
              std::string::npos)
        << r.err;
    r = study(config() + " --out " + out() + " --device gpu" + extra);
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_NE(r.err.find("--device: expected cpu, cuda or cuda:N, got 'gpu'"), std::string::npos)
        << r.err;
    EXPECT_FALSE(fs::exists(tmp_ / "out"));
  }
  // A GPU asked for where there is none: refused before any work, saying how to run on the CPU.
  if (test::run_xlt("--version").out.find("CPU only") != std::string::npos) {
    const auto r = study(config() + " --out " + out() + " --device cuda");
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find("CUDA is not available in this build/machine (--device cpu runs the "
                         "study on the CPU)"),
              std::string::npos)
        << r.err;
    EXPECT_FALSE(fs::exists(tmp_ / "out"));
  }
  test::write_text(tmp_ / "src" / "demo.toml",
                   std::regex_replace(base, std::regex("seeds = \\[1, 2\\]"),
                                      "seeds = [1, 2]\ndevice = \"cudafoo\""));
  auto r = study(config() + " --out " + out() + " --dry-run");
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("demo.toml:16: study.device: expected cpu, cuda or cuda:N, found 'cudafoo'"),
            std::string::npos)
      << r.err;
  test::write_text(tmp_ / "src" / "demo.toml",
                   std::regex_replace(base, std::regex("seeds = \\[1, 2\\]"),
                                      "seeds = [1, 2]\nstages = [\"baseline\", \"report\"]"));
  r = study(config() + " --out " + out() + " --stages finetune");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("--stages: 'finetune' is not in study.stages of "), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("(baseline, report)"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(tmp_ / "out"));
}

// [perplexity] texts for some study languages and one outside them: the named ones are scored
// (de too, after the study's), the others get none and the results say why; a text given as ""
// or as a folder is refused when the config is read (it resolved to the config's folder).
TEST_F(DemoStudy, PerplexityTextsNameWhatIsScored) {
  const std::string base = read_file(test::source_dir() / "examples" / "demo.toml");
  const std::string only_perplexity =
      std::regex_replace(base, std::regex("seeds = \\[1, 2\\]"),
                         "seeds = [1, 2]\nstages = [\"perplexity\", \"report\"]");
  test::write_text(
      tmp_ / "src" / "demo.toml",
      std::regex_replace(only_perplexity, std::regex("texts = \\{[^\n]*"),
                         "texts = { en = \"demo/text-en.txt\", de = \"demo/text-fr.txt\" }"));
  const auto r = study(config() + " --out " + out());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json results = json::parse(read_file(tmp_ / "out" / "results.json"));
  std::vector<std::string> scored;
  for (const auto& [lang, v] : results["perplexity"]["languages"].items()) scored.push_back(lang);
  EXPECT_EQ(scored, (std::vector<std::string>{"de", "en"}));
  EXPECT_NE(results["study"]["notes"].dump().find("No perplexity for es, fr, hi: [perplexity] "
                                                  "texts names no file for it"),
            std::string::npos)
      << results["study"]["notes"].dump();
  // The text of a language outside study.languages is an input of the unit like the others.
  test::write_text(tmp_ / "src" / "demo" / "text-fr.txt",
                   read_file(tmp_ / "src" / "demo" / "text-fr.txt") + "Une ligne de plus.\n");
  const auto plan = study(config() + " --out " + out() + " --dry-run");
  EXPECT_TRUE(std::regex_search(plan.out, std::regex("run +perplexity +inputs changed: texts")))
      << plan.out;
  for (const char* bad : {"\"\"", "\"demo\""}) {
    test::write_text(tmp_ / "src" / "demo.toml",
                     std::regex_replace(only_perplexity, std::regex("texts = \\{[^\n]*"),
                                        std::string("texts = { en = ") + bad + " }"));
    const auto e = study(config() + " --out " + out() + "2");
    EXPECT_EQ(e.exit_code, 2) << e.err;
    EXPECT_NE(e.err.find("demo.toml:58: perplexity.texts.en: "), std::string::npos) << e.err;
    EXPECT_FALSE(fs::exists(tmp_ / "out2"));
  }
}

TEST_F(DemoStudy, RefusesForeignAndLockedFolders) {
  fs::create_directories(tmp_ / "out");
  test::write_text(tmp_ / "out" / "thesis.tex", "precious");
  auto r = study(config() + " --out " + out());
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("is not an xlt study folder"), std::string::npos) << r.err;
  EXPECT_TRUE(fs::exists(tmp_ / "out" / "thesis.tex"));
  r = study(config() + " --out " + out() + " --overwrite --dry-run");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("--overwrite"), std::string::npos);
  EXPECT_TRUE(fs::exists(tmp_ / "out" / "thesis.tex"));  // a dry run writes nothing

  // A study folder whose lock another process holds.
  fs::remove(tmp_ / "out" / "thesis.tex");
  test::write_text(tmp_ / "out" / "study.json", "{}");
  const int fd = ::open((tmp_ / "out" / ".xlt-study.lock").c_str(), O_RDWR | O_CREAT, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::flock(fd, LOCK_EX | LOCK_NB), 0);
  r = study(config() + " --out " + out() + " --stages report");
  ::close(fd);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("is in use by another xlt study"), std::string::npos) << r.err;
}

TEST(RealData, SharedXnliAndMultinliWithMbertTokenizer) {
  // A random tiny BERT with mBERT's real vocabulary, on the shared MultiNLI sample and the
  // labelled XNLI test files: real formats, real tokenizer, paired (parallel) test sets.
  const fs::path data = test::shared_dir() / "data";
  XLT_REQUIRE_PATH(data / "bert-base-multilingual-cased" / "vocab.txt");
  XLT_REQUIRE_PATH(data / "multinli" / "train.jsonl");
  XLT_REQUIRE_PATH(data / "xnli" / "labelled" / "test-hi.tsv");
  test::TempDir tmp;
  json cfg = json::parse(read_file(test::source_dir() / "examples" / "demo" / "bert-config.json"));
  cfg["vocab_size"] = 119547;
  cfg["max_position_embeddings"] = 512;
  test::write_text(tmp / "tiny-mbert.json", cfg.dump(2));
  const fs::path x = data / "xnli" / "labelled";  // XNLI test with labels, XTREME layout
  std::string toml =
      "[study]\nseeds = [3]\nthreads = 1\n"
      "stages = [\"baseline\", \"finetune\", \"zero_shot\", \"report\"]\n"
      "[encoder]\ninit = \"tiny-mbert.json\"\ntokenizer = " +
      json((data / "bert-base-multilingual-cased").string()).dump() +
      "\n[train]\ndata = " + json((data / "multinli" / "train.jsonl").string()).dump() +
      "\nsamples = 200\nepochs = 1\nlearning_rate = 1e-3\nbatch_size = 16\n"
      "[eval]\nsamples = 100\nfiles = { ";
  for (const std::string lang : {"en", "es", "fr", "hi"}) {
    toml += lang + " = " + json((x / ("test-" + lang + ".tsv")).string()).dump() +
            (lang == "hi" ? " }\n" : ", ");
  }
  test::write_text(tmp / "real.toml", toml);
  const auto r = test::run_xlt("study " + shell_quote((tmp / "real.toml").string()) + " --out " +
                               shell_quote((tmp / "out").string()) + " --quiet");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json results = json::parse(read_file(tmp / "out" / "results.json"));
  const json schema = json::parse(read_file(test::source_dir() / "docs" / "results-schema.json"));
  for (const auto& e : report::validate_json(results, schema)) {
    ADD_FAILURE() << "results.json" << e.path << ": " << e.message;
  }
  for (const char* lang : {"en", "es", "fr", "hi"}) {
    EXPECT_EQ(results["zero_shot"]["languages"][lang]["n"], 100) << lang;
  }
  // XNLI test rows are parallel and subsampled alike: the gaps are paired.
  EXPECT_TRUE(results["transfer_gap"]["languages"]["hi"]["paired"].get<bool>());
  EXPECT_TRUE(results["analysis"].is_null());
  const json ft = json::parse(read_file(tmp / "out" / "finetune" / "seed-3" / "stage.json"));
  EXPECT_EQ(ft["summary"]["steps"], 13);  // ceil(200 / 16), one epoch
}

TEST(Notebook, RunsOnTheDemoData) {
  const fs::path exe = test::cli_path().parent_path() / "examples" / "example_notebook";
  XLT_REQUIRE_PATH(exe);
  test::TempDir tmp;
  const auto r =
      test::run_command(shell_quote(exe.string()) + " " +
                        shell_quote((test::source_dir() / "examples" / "demo").string()) + " " +
                        shell_quote((tmp / "work").string()));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("train: 135 English pairs; eval: 60 pairs per language"), std::string::npos)
      << r.out;
  EXPECT_TRUE(std::regex_search(r.out, std::regex("baseline :  en [0-9.]+%  es [0-9.]+%")))
      << r.out;
  EXPECT_NE(r.out.find("t-SNE of 6 sentences"), std::string::npos);
  EXPECT_NE(r.out.find("fine-tuned: 27 steps"), std::string::npos) << r.out;  // 3 x ceil(135/16)
  EXPECT_NE(r.out.find("zero-shot:  en "), std::string::npos);
}

}  // namespace
}  // namespace xlt::study
