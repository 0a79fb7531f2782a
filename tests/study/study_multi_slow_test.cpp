// End to end: a 15-language, two-encoder `xlt study` on the shared labelled XNLI test set with
// tiny random models (the demo's BERT and a tiny XLM-R with the shared SentencePiece fixture):
// the dry run lists every unit of both encoders, results.json has the per-encoder layout and
// validates against docs/results-schema.json, the paired gap comparison and the correlations are
// consistent with the per-encoder numbers, units are resumable per encoder, and the report's
// comparison sections render in headless Chromium. Also: examples/xnli15.toml plans the full
// protocol.
#include <gtest/gtest.h>

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

const std::vector<std::string> kXnli15 = {"en", "ar", "bg", "de", "el", "es", "fr", "hi",
                                          "ru", "sw", "th", "tr", "ur", "vi", "zh"};

class MultiEncoderStudy : public ::testing::Test {
 protected:
  void SetUp() override {
    labelled_ = test::shared_dir() / "data" / "xnli" / "labelled";
    spm_ = test::shared_dir() / "fixtures" / "spm" / "xlmr_unigram";
    XLT_REQUIRE_PATH(labelled_ / "test-zh.tsv");
    XLT_REQUIRE_PATH(spm_ / "sentencepiece.bpe.model");
    const fs::path demo = test::source_dir() / "examples" / "demo";
    // A tiny XLM-R: the shared fixture tokenizer has 4,000 pieces (+ fairseq offset and <mask>).
    test::write_text(tmp_ / "xlmr-config.json", R"({
  "architectures": ["XLMRobertaForSequenceClassification"], "model_type": "xlm-roberta",
  "vocab_size": 4002, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
  "intermediate_size": 64, "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
  "attention_probs_dropout_prob": 0.1, "max_position_embeddings": 130, "type_vocab_size": 1,
  "initializer_range": 0.02, "layer_norm_eps": 1e-5, "pad_token_id": 1, "bos_token_id": 0,
  "eos_token_id": 2})");
    std::string files;
    for (const auto& l : kXnli15) {
      files += (files.empty() ? "" : ", ") + l + " = " +
               json((labelled_ / ("test-" + l + ".tsv")).string()).dump();
    }
    std::string langs;
    for (const auto& l : kXnli15) langs += (langs.empty() ? "\"" : ", \"") + l + "\"";
    auto q = [](const fs::path& p) { return json(p.string()).dump(); };
    config_ = tmp_ / "xnli15-tiny.toml";
    test::write_text(config_,
                     "[study]\ntitle = \"15 languages, two tiny random encoders\"\n"
                     "languages = [" +
                         langs +
                         "]\nseeds = [1, 2]\nthreads = 1\n\n"
                         "[encoders.bert]\ninit = " +
                         q(demo / "bert-config.json") + "\ntokenizer = " + q(demo) +
                         "\n\n"
                         "[encoders.xlmr]\ninit = " +
                         q(tmp_ / "xlmr-config.json") + "\ntokenizer = " + q(spm_) +
                         "\ninit_seed = 7\n\n"
                         "[causal_lm]\ninit = " +
                         q(demo / "xglm-config.json") + "\ntokenizer = " + q(demo / "xglm") +
                         "\n\n"
                         "[train]\ndata = " +
                         q(demo / "train-en.jsonl") +
                         "\nsamples = 0\nepochs = 20\nlearning_rate = 1e-3\n"
                         "batch_size = 16\nmax_length = 64\nsave_every = 10\n\n"
                         "[eval]\nfiles = { " +
                         files +
                         " }\nsamples = 45\n"
                         "batch_size = 32\nmax_length = 64\nbootstrap_resamples = 200\n\n"
                         "[analysis]\ntsne_iterations = 250\n\n"
                         "[attention]\nlayer = 2\n\n"
                         "[perplexity]\nmax_lines = 20\nmax_length = 64\n");
  }
  test::CommandResult study(const std::string& args) {
    return test::run_xlt("study " + shell_quote(config_.string()) + " --out " +
                         shell_quote((tmp_ / "out").string()) + " " + args + " --quiet");
  }

  test::TempDir tmp_;
  fs::path labelled_, spm_, config_;
};

TEST_F(MultiEncoderStudy, FifteenLanguagesTwoEncodersEndToEnd) {
  // The plan: every unit of both encoders under encoders/NAME/, the shared ones once.
  const auto plan = study("--dry-run");
  ASSERT_EQ(plan.exit_code, 0) << plan.err;
  for (const char* unit :
       {"encoders/bert/init/encoder", "encoders/xlmr/init/encoder", "init/causal_lm",
        "encoders/bert/baseline/seed-1", "encoders/xlmr/finetune/seed-2",
        "encoders/xlmr/zero_shot/seed-1", "encoders/bert/analysis", "encoders/xlmr/analysis",
        "attention", "perplexity", "report"}) {
    EXPECT_TRUE(std::regex_search(plan.out, std::regex("run +" + std::string(unit) + " ")))
        << unit << "\n"
        << plan.out;
  }
  // 2 encoder inits + causal init + 2 x (2 x 3 seed units + analysis) + 3 shared units.
  EXPECT_EQ(lines_starting(plan.out, "  run").size(), 20u) << plan.out;

  const auto t0 = std::chrono::steady_clock::now();
  const auto r = study("");
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::cerr << "[ 15-language two-encoder study: " << seconds << " s ]\n";
  const fs::path o = tmp_ / "out";

  const json results = json::parse(read_file(o / "results.json"));
  const json schema = json::parse(read_file(test::source_dir() / "docs" / "results-schema.json"));
  for (const auto& e : report::validate_json(results, schema)) {
    ADD_FAILURE() << "results.json" << e.path << ": " << e.message;
  }
  // Per-encoder layout; the top-level blocks are null.
  for (const char* key : {"baseline", "zero_shot", "transfer_gap", "analysis"}) {
    EXPECT_TRUE(results[key].is_null()) << key;
  }
  ASSERT_EQ(results["encoders"].size(), 2u);
  for (const char* name : {"bert", "xlmr"}) {
    const json& e = results["encoders"][name];
    ASSERT_TRUE(e["zero_shot"].is_object()) << name;
    EXPECT_EQ(e["baseline"]["languages"].size(), 15u) << name;
    EXPECT_EQ(e["zero_shot"]["languages"]["zh"]["n"], 45) << name;
    EXPECT_EQ(e["zero_shot"]["languages"]["sw"]["across_seeds"]["n"], 2) << name;
    EXPECT_EQ(e["transfer_gap"]["languages"].size(), 14u) << name;
    EXPECT_EQ(e["transfer_gap"]["correlation"]["n"], 14) << name;
    EXPECT_TRUE(e["transfer_gap"]["correlation"]["meaningful"].get<bool>()) << name;
    // One correlation per built-in measure, each with an ordered bootstrap interval around rho.
    ASSERT_EQ(e["transfer_gap"]["correlations"].size(), 3u) << name;
    for (const auto& c : e["transfer_gap"]["correlations"]) {
      EXPECT_EQ(c["n"], 14);
      EXPECT_EQ(c["distances"].size(), 14u);
      if (c["rho"].is_number()) {
        EXPECT_LE(c["ci95"][0].get<double>(), c["ci95"][1].get<double>()) << c.dump();
      }
    }
    EXPECT_EQ(e["transfer_gap"]["correlations"][0]["rho"], e["transfer_gap"]["correlation"]["rho"]);
    // Alignment on the evaluation rows: all 15 languages, every pair with English at every layer.
    const json& al = e["analysis"]["alignment"];
    EXPECT_EQ(al["languages"].size(), 15u) << name;
    EXPECT_GE(al["sentences"].get<int>(), 10) << name;
    EXPECT_LE(al["sentences"].get<int>(), 45) << name;
    int with_en = 0;
    for (const auto& row : al["before"]) {
      with_en += row["layer"] == 0 && (row["lang_a"] == "en" || row["lang_b"] == "en");
    }
    EXPECT_EQ(with_en, 14) << name;
  }
  EXPECT_EQ(results["study"]["encoders"].size(), 2u);
  EXPECT_EQ(results["study"]["encoders"][1]["name"], "xlmr");
  EXPECT_EQ(results["study"]["encoders"][1]["type"], "xlm-roberta");
  EXPECT_EQ(results["perplexity"]["languages"].size(), 15u);
  // The paired comparison: same rows in every run, so each encoder's paired gap is its transfer
  // gap (mean over seeds) and the difference is theirs.
  ASSERT_EQ(results["comparison"]["pairs"].size(), 1u);
  const json& pair = results["comparison"]["pairs"][0];
  EXPECT_EQ(pair["a"], "bert");
  EXPECT_EQ(pair["languages"].size(), 14u);
  for (const auto& [lang, d] : pair["languages"].items()) {
    const double ga = results["encoders"]["bert"]["transfer_gap"]["languages"][lang]["gap"];
    const double gb = results["encoders"]["xlmr"]["transfer_gap"]["languages"][lang]["gap"];
    EXPECT_NEAR(d["gap_a"].get<double>(), ga, 1e-12) << lang;
    EXPECT_NEAR(d["gap_b"].get<double>(), gb, 1e-12) << lang;
    EXPECT_NEAR(d["difference"].get<double>(), ga - gb, 1e-12) << lang;
    EXPECT_LE(d["ci95"][0].get<double>(), d["difference"].get<double>() + 1e-12) << lang;
    EXPECT_GE(d["ci95"][1].get<double>(), d["difference"].get<double>() - 1e-12) << lang;
    EXPECT_EQ(d["rows"], 45) << lang;
  }
  // Answers per encoder.
  int bert_answers = 0;
  for (const auto& a : results["answers"]) {
    bert_answers += a["id"].get<std::string>().rfind("bert/", 0) == 0;
  }
  EXPECT_GE(bert_answers, 3);

  for (const char* f :
       {"compare_accuracy", "compare_gap_distance", "compare_gap_difference_bert_xlmr",
        "accuracy_bert", "accuracy_xlmr", "transfer_gap_distance_xlmr", "alignment_heatmap_bert",
        "alignment_heatmap_xlmr", "alignment_similarity_bert", "tsne_before_bert", "perplexity"}) {
    EXPECT_TRUE(fs::exists(o / "figures" / (std::string(f) + ".svg"))) << f;
  }
  EXPECT_FALSE(fs::exists(o / "figures" / "alignment_before_bert.svg"));
  EXPECT_TRUE(fs::exists(o / "tables" / "compare_correlations.csv"));
  const std::string html = read_file(o / "report.html");
  EXPECT_NE(html.find("Encoders side by side"), std::string::npos);
  // A warning for each randomly initialised model.
  EXPECT_NE(html.find("The encoder bert (random bert-config.json) is RANDOMLY"), std::string::npos);
  EXPECT_NE(html.find("The encoder xlmr (random xlmr-config.json) is RANDOMLY"), std::string::npos);
  EXPECT_NE(html.find("The causal LM (random xglm-config.json) is RANDOMLY"), std::string::npos);

  // Resumable per encoder: a rerun skips everything; deleting one encoder's unit reruns that
  // unit alone (fingerprints come from inputs, so the report stays up to date).
  auto again = study("");
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_TRUE(lines_starting(again.err, "run ").empty()) << again.err;
  EXPECT_EQ(lines_starting(again.err, "skip ").size(), 20u) << again.err;
  fs::remove_all(o / "encoders" / "xlmr" / "zero_shot" / "seed-2");
  again = study("");
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(lines_starting(again.err, "run "),
            std::vector<std::string>{"run encoders/xlmr/zero_shot/seed-2: not run yet"})
      << again.err;
  EXPECT_NE(again.err.find("skip report: up to date"), std::string::npos) << again.err;
  // The rerun reproduces the predictions: rebuilding the report gives the same comparison.
  fs::remove_all(o / "report");
  again = study("--stages report");
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(json::parse(read_file(o / "results.json"))["comparison"], results["comparison"]);

  if (fs::exists(test::kChromium) || test::in_ci()) {
    XLT_REQUIRE_CHROMIUM();
    fs::create_directories(tmp_ / "browser");
    const auto page = test::load_in_browser(o / "report.html", tmp_ / "browser");
    ASSERT_EQ(page.error, "");
    EXPECT_EQ(test::count_substr(page.dom, "<svg"), test::count_substr(html, "<svg"));
    EXPECT_NE(page.dom.find("Encoders side by side"), std::string::npos);
    EXPECT_EQ(test::count_substr(page.console, "Uncaught"), 0) << page.console;
  }
}

TEST(Xnli15Example, DryRunPlansTheFullProtocol) {
  // Fake data home and an empty model cache: the plan needs the files to exist, not their content.
  test::TempDir tmp;
  fs::create_directories(tmp.path() / "data" / "xnli" / "XNLI-1.0");
  fs::create_directories(tmp.path() / "data" / "multinli" / "multinli_1.0");
  test::write_text(tmp.path() / "data" / "xnli" / "XNLI-1.0" / "xnli.test.tsv", "x\n");
  test::write_text(tmp.path() / "data" / "xnli" / "XNLI-1.0" / "xnli.dev.tsv", "x\n");
  test::write_text(tmp.path() / "data" / "multinli" / "multinli_1.0" / "multinli_1.0_train.jsonl",
                   "{}\n");
  const std::string env = "XLT_DATA_HOME=" + shell_quote((tmp.path() / "data").string()) +
                          " HF_HOME=" + shell_quote((tmp.path() / "hf").string()) +
                          " HF_HUB_CACHE=" + shell_quote((tmp.path() / "hf" / "hub").string()) +
                          " HF_HUB_OFFLINE=1 ";
  const auto r =
      test::run_command(env + shell_quote(test::cli_path().string()) + " study " +
                        shell_quote((test::source_dir() / "examples" / "xnli15.toml").string()) +
                        " --out " + shell_quote((tmp.path() / "out").string()) + " --dry-run");
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  for (const char* m :
       {"download/encoders/mbert", "download/encoders/xlmr", "download/causal_lm"}) {
    EXPECT_TRUE(std::regex_search(r.out, std::regex("run +" + std::string(m) + " "))) << r.out;
  }
  // 2 encoders x (3 seeds x baseline, finetune, zero_shot + analysis) + attention, perplexity,
  // report.
  int units = 0;
  for (const auto& line : lines_starting(r.out, "  run")) {
    units += line.find("download/") == std::string::npos;
  }
  EXPECT_EQ(units, 23) << r.out;
  for (const char* name : {"mbert", "xlmr"}) {
    for (const char* stage : {"baseline", "finetune", "zero_shot"}) {
      for (int seed = 1; seed <= 3; ++seed) {
        const std::string unit =
            std::string("encoders/") + name + "/" + stage + "/seed-" + std::to_string(seed);
        EXPECT_TRUE(std::regex_search(r.out, std::regex("run +" + unit + " +not run yet"))) << unit;
      }
    }
  }
}

}  // namespace
}  // namespace xlt::study
