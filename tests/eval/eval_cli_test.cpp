// End-to-end evaluation on a tiny BERT built with `xlt init-model` over the demo vocabulary:
// `xlt eval` result files and their schema, length-sorted batching against batch size 1, a
// checkpoint without a head (seeded initialisation, flagged), label mapping by id2label name,
// and `xlt perplexity` on a tiny XGLM.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <utility>

#include "common/test_env.h"
#include "xlt/data/nli.h"
#include "xlt/eval/evaluate.h"
#include "xlt/eval/perplexity.h"
#include "xlt/models/model.h"
#include "xlt/models/tensor_io.h"
#include "xlt/report/json_schema.h"
#include "xlt/text/tokenizer.h"

namespace fs = std::filesystem;
using json = nlohmann::json;
using xlt::test::run_xlt;
using xlt::test::shell_quote;

namespace {

fs::path demo() {
  return xlt::test::source_dir() / "examples" / "demo";
}

std::vector<json> read_jsonl(const fs::path& p) {
  std::vector<json> rows;
  std::ifstream in(p);
  std::string line;
  while (std::getline(in, line)) rows.push_back(json::parse(line));
  return rows;
}

// Gold label of data row `index` (0-based, no header) of an XTREME-format file.
int gold_of(const fs::path& file, int64_t index) {
  std::ifstream in(file);
  std::string line;
  for (int64_t i = 0; i <= index; ++i) std::getline(in, line);
  std::string label = line.substr(line.rfind('\t') + 1);
  return xlt::data::LabelSet::nli().id(label);
}

class EvalCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new xlt::test::TempDir();
    auto r = run_xlt("init-model --arch bert --config " +
                     shell_quote((demo() / "bert-config.json").string()) + " --out " +
                     shell_quote(model_dir().string()) + " --num-labels 3 --seed 5");
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  static void TearDownTestSuite() { delete dir_; }
  static fs::path model_dir() { return dir_->path() / "model"; }
  std::string data_args() const {
    std::string a;
    for (const char* l : {"en", "es", "fr", "hi"})
      a += " --data " + std::string(l) + "=" +
           shell_quote((demo() / ("dev-" + std::string(l) + ".tsv")).string());
    return a;
  }
  static xlt::test::TempDir* dir_;
  xlt::test::TempDir tmp_;
};
xlt::test::TempDir* EvalCli::dir_ = nullptr;

fs::path xglm_bpe_dir() {
  return xlt::test::fixtures_dir() / "spm" / "xglm_bpe";
}

// The xglm_tiny fixture's shape with the BPE fixture's vocabulary, random weights (seed 3), saved
// with that tokenizer into `dir`: a causal LM for the perplexity command.
std::pair<std::unique_ptr<xlt::text::Tokenizer>, std::unique_ptr<xlt::models::Model>> save_tiny_lm(
    const fs::path& dir) {
  auto tok = xlt::text::load_tokenizer(xglm_bpe_dir());
  auto c = xlt::io::ModelConfig::load(xlt::test::fixtures_dir() / "xglm_tiny" / "config.json");
  c.vocab_size = static_cast<int64_t>(tok->vocab_size());
  auto model = xlt::models::create_model(c, 3);
  xlt::models::SaveOptions so;
  so.tokenizer_dir = xglm_bpe_dir();
  xlt::models::save_model(*model, dir, so);
  return {std::move(tok), std::move(model)};
}

}  // namespace

TEST_F(EvalCli, WritesResultFilesWithTheContractSchema) {
  const fs::path out = tmp_ / "out";
  auto r = run_xlt("eval " + shell_quote(model_dir().string()) + data_args() +
                   " --samples 9 --seed 3 --batch-size 4 --bootstrap 1000 --threads 1 --out " +
                   shell_quote(out.string()));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("accuracy"), std::string::npos);
  EXPECT_NE(r.err.find("pairs/s"), std::string::npos);

  json j = json::parse(xlt::test::read_text(out / "results.json"));
  // The contract: docs/eval-results-schema.json, and it does catch a broken document.
  const json schema = json::parse(
      xlt::test::read_text(xlt::test::source_dir() / "docs" / "eval-results-schema.json"));
  for (const auto& e : xlt::report::validate_json(j, schema)) {
    ADD_FAILURE() << "results.json" << e.path << ": " << e.message;
  }
  json broken = j;
  broken["languages"]["es"]["accuracy"] = 1.5;
  broken["languages"]["hi"].erase("per_class");
  broken.erase("timing");
  std::set<std::string> where;
  for (const auto& e : xlt::report::validate_json(broken, schema)) where.insert(e.path);
  EXPECT_TRUE(where.count("/languages/es/accuracy"));
  EXPECT_TRUE(where.count("/languages/hi"));
  EXPECT_TRUE(where.count(""));
  EXPECT_EQ(j.at("head_initialized"), false);
  EXPECT_EQ(j.at("config").at("seed"), 3);
  EXPECT_EQ(j.at("config").at("samples"), 9);
  EXPECT_EQ(j.at("config").at("batch_size"), 4);
  EXPECT_EQ(j.at("config").at("max_length"), 128);
  EXPECT_TRUE(j.contains("xlt_version"));
  EXPECT_EQ(j.at("model").at("type"), "bert");
  ASSERT_EQ(j.at("languages").size(), 4u);

  auto preds = read_jsonl(out / "predictions.jsonl");
  ASSERT_EQ(preds.size(), 36u);
  std::map<std::string, std::vector<int64_t>> indices;
  std::map<std::string, int> correct;
  for (const auto& p : preds) {
    const std::string lang = p.at("lang");
    const int64_t index = p.at("index");
    indices[lang].push_back(index);
    EXPECT_EQ(p.at("gold"), gold_of(demo() / ("dev-" + lang + ".tsv"), index)) << lang << index;
    double sum = 0;
    for (double v : p.at("probs")) sum += v;
    EXPECT_NEAR(sum, 1.0, 1e-5);
    std::vector<double> probs = p.at("probs");
    int argmax = static_cast<int>(std::max_element(probs.begin(), probs.end()) - probs.begin());
    EXPECT_EQ(p.at("pred"), argmax);
    correct[lang] += p.at("pred") == p.at("gold");
  }
  for (const char* lang : {"en", "es", "fr", "hi"}) {
    SCOPED_TRACE(lang);
    const auto& L = j.at("languages").at(lang);
    EXPECT_EQ(L.at("n"), 9);
    const double acc = L.at("accuracy");
    EXPECT_DOUBLE_EQ(acc, correct[lang] / 9.0);
    EXPECT_LE(L.at("ci95")[0].get<double>(), acc);
    EXPECT_GE(L.at("ci95")[1].get<double>(), acc);
    int64_t total = 0;
    for (const auto& row : L.at("confusion")) {
      ASSERT_EQ(row.size(), 3u);
      for (int64_t c : row) total += c;
    }
    EXPECT_EQ(total, 9);
    EXPECT_GE(L.at("chance").get<double>(), 1.0 / 3);
    EXPECT_TRUE(L.contains("macro_f1"));
    EXPECT_EQ(L.at("per_class").size(), 3u);
    // Same seed, same size: the same rows in every language, in source order.
    auto idx = indices[lang];
    EXPECT_EQ(idx, indices["en"]);
    EXPECT_TRUE(std::is_sorted(idx.begin(), idx.end()));
    EXPECT_EQ(std::set<int64_t>(idx.begin(), idx.end()).size(), 9u);
    EXPECT_LT(idx.back(), 60);
    if (std::string(lang) != "en") {
      const auto& gap = L.at("transfer_gap");
      EXPECT_EQ(gap.at("paired"), true);
      EXPECT_NEAR(gap.at("gap").get<double>(),
                  j.at("languages").at("en").at("accuracy").get<double>() - acc, 1e-12);
    } else {
      EXPECT_FALSE(L.contains("transfer_gap"));
    }
  }
  std::string csv = xlt::test::read_text(out / "results.csv");
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 5);
}

TEST_F(EvalCli, LengthSortedBatchesGiveTheSamePredictionsAsBatchSizeOne) {
  auto model = xlt::models::load_model(model_dir());
  auto tok = xlt::text::load_tokenizer(model_dir());
  auto ds = xlt::data::read_nli_file(demo() / "dev-fr.tsv", "fr");
  ds.examples.resize(25);
  xlt::eval::EvalOptions one;
  one.batch_size = 1;
  one.sort_by_length = false;
  one.progress = false;
  xlt::eval::EvalOptions sorted = one;
  sorted.batch_size = 7;
  sorted.sort_by_length = true;
  auto a = xlt::eval::evaluate_nli(*model, *tok, ds, one);
  auto b = xlt::eval::evaluate_nli(*model, *tok, ds, sorted);
  ASSERT_EQ(a.size(), 25);
  EXPECT_EQ(a.pred, b.pred);
  EXPECT_EQ(a.index, b.index);
  EXPECT_EQ(a.tokens, b.tokens);
  EXPECT_LT(b.padded_tokens, 7 * 4 * 40);  // sanity: padding is per batch, not to max_length
  for (int64_t i = 0; i < a.size(); ++i)
    for (int k = 0; k < 3; ++k)
      EXPECT_NEAR(a.probs[i][k], b.probs[i][k], 1e-5) << i;  // padding changes float sums only
  // The unsorted batching of the same size pads more.
  xlt::eval::EvalOptions naive = sorted;
  naive.sort_by_length = false;
  auto c = xlt::eval::evaluate_nli(*model, *tok, ds, naive);
  EXPECT_EQ(c.pred, a.pred);
  EXPECT_GT(c.padded_tokens, b.padded_tokens);
  EXPECT_EQ(a.padded_tokens, a.tokens);
}

// --attention picks the kernel: the fused one (PyTorch 2.x) and the variable-length path (on the
// CPU its per-sequence reference) must give the eager path's probabilities, packed and padded;
// an unknown kernel is a usage error that writes nothing.
TEST_F(EvalCli, AttentionKernelsGiveTheSameProbabilities) {
  const std::string common = "eval " + shell_quote(model_dir().string()) + data_args() +
                             " --samples 12 --batch-size 5 --bootstrap 10 --no-progress --out ";
  std::map<std::string, std::vector<json>> runs;
  for (const char* variant : {"eager", "sdpa", "sdpa --no-packing", "varlen", "auto"}) {
    const fs::path out = tmp_ / ("out-" + std::to_string(runs.size()));
    auto r = run_xlt(common + shell_quote(out.string()) + " --attention " + variant);
    ASSERT_EQ(r.exit_code, 0) << variant << ": " << r.err;
    runs[variant] = read_jsonl(out / "predictions.jsonl");
    // results.json records how the forward ran.
    const json config = json::parse(xlt::test::read_text(out / "results.json"))["config"];
    const std::string v = variant;
    EXPECT_EQ(config.at("attention"), v.substr(0, v.find(' '))) << v;
    EXPECT_EQ(config.at("packed"), v.find("--no-packing") == std::string::npos) << v;
  }
  const auto& want = runs.at("eager");
  ASSERT_EQ(want.size(), 48u);
  for (const auto& [variant, got] : runs) {
    SCOPED_TRACE(variant);
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < want.size(); ++i) {
      EXPECT_EQ(got[i].at("index"), want[i].at("index"));
      for (int k = 0; k < 3; ++k)
        EXPECT_NEAR(got[i].at("probs")[k].get<double>(), want[i].at("probs")[k].get<double>(), 1e-5)
            << i;
    }
  }
  auto r = run_xlt(common + shell_quote((tmp_ / "bad").string()) + " --attention flash");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("--attention"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("flash"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(tmp_ / "bad"));
}

// MultiNLI is English: --langs es is not a language it provides, so it is refused rather than
// evaluated as English (or, before, reported as Spanish).
TEST_F(EvalCli, LangsThatNoDataProvidesAreRefused) {
  const fs::path home = tmp_ / "home";
  fs::create_directories(home / "multinli" / "multinli_1.0");
  xlt::test::write_text(
      home / "multinli" / "multinli_1.0" / "multinli_1.0_dev_matched.jsonl",
      "{\"gold_label\": \"neutral\", \"sentence1\": \"a b\", \"sentence2\": \"c\"}\n");
  const std::string cmd = "XLT_DATA_HOME=" + shell_quote(home.string()) + " " +
                          shell_quote(xlt::test::cli_path().string()) + " eval " +
                          shell_quote(model_dir().string()) +
                          " --data multinli:split=dev_matched --no-progress --bootstrap 10 --out ";
  auto r = xlt::test::run_command(cmd + shell_quote((tmp_ / "es").string()) + " --langs es");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("--langs names 'es', which no --data value provides (they give: en)"),
            std::string::npos)
      << r.err;
  EXPECT_FALSE(fs::exists(tmp_ / "es"));
  // Below 8 tokens a pair is cut to its special tokens: every row got one prediction.
  r = xlt::test::run_command(cmd + shell_quote((tmp_ / "ml").string()) + " --max-length 3");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("--max-length must be at least 8, got 3"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(tmp_ / "ml"));
  r = xlt::test::run_command(cmd + shell_quote((tmp_ / "en").string()));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json j = json::parse(xlt::test::read_text(tmp_ / "en" / "results.json"));
  EXPECT_TRUE(j["languages"].contains("en")) << j["languages"].dump();
}

// --samples after --skip-bad-rows skipped a row in one language: that language's sample is the
// other languages' rows less the bad one (it was the rows one place further on, so every
// transfer gap compared different pairs).
TEST_F(EvalCli, SamplesAfterSkippedRowsStayTheSameRowsInEveryLanguage) {
  const std::string cmd = "eval " + shell_quote(model_dir().string()) +
                          " --data en=" + shell_quote((demo() / "dev-en.tsv").string()) +
                          " --data es=" + shell_quote((tmp_ / "es.tsv").string()) +
                          " --skip-bad-rows --samples 40 --no-progress --bootstrap 10 --out ";
  auto sampled = [&](const std::string& name) {
    auto r = run_xlt(cmd + shell_quote((tmp_ / name).string()));
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.err.find("warning: --samples"), std::string::npos) << r.err;
    std::map<std::string, std::vector<int64_t>> rows;
    std::istringstream in(xlt::test::read_text(tmp_ / name / "predictions.jsonl"));
    for (std::string line; std::getline(in, line);) {
      const json p = json::parse(line);
      rows[p["lang"].get<std::string>()].push_back(p["index"].get<int64_t>());
    }
    return rows;
  };
  const std::string es = xlt::test::read_text(demo() / "dev-es.tsv");
  xlt::test::write_text(tmp_ / "es.tsv", es);
  const auto clean = sampled("clean");
  ASSERT_EQ(clean.at("en").size(), 40u);
  ASSERT_EQ(clean.at("es"), clean.at("en"));
  // The es row of the first sampled pair gets a bad label.
  const int64_t bad = clean.at("en")[0];
  std::vector<std::string> lines;
  std::istringstream in(es);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  auto& row = lines.at(static_cast<size_t>(bad));
  row = row.substr(0, row.rfind('\t')) + "\tmaybe";
  std::string broken;
  for (const auto& l : lines) broken += l + "\n";
  xlt::test::write_text(tmp_ / "es.tsv", broken);
  const auto rows = sampled("broken");
  EXPECT_EQ(rows.at("en"), clean.at("en"));
  EXPECT_EQ(rows.at("es"), std::vector<int64_t>(clean.at("en").begin() + 1, clean.at("en").end()));
}

// A bad row whose language cannot be read has no place in any language's draw: the run says
// that the samples of that file's languages may differ.
TEST_F(EvalCli, SamplesAfterARowOfUnknownLanguageWarn) {
  std::string xnli = "language\tgold_label\tsentence1\tsentence2\tpairID\n";
  for (const char* l : {"en", "es"}) {
    std::istringstream in(xlt::test::read_text(demo() / ("dev-" + std::string(l) + ".tsv")));
    int i = 0;
    for (std::string line; std::getline(in, line) && i < 12; ++i) {
      const size_t a = line.find('\t'), b = line.rfind('\t');
      xnli += std::string(l) + "\t" + line.substr(b + 1) + "\t" + line.substr(0, a) + "\t" +
              line.substr(a + 1, b - a - 1) + "\t" + std::to_string(i) + "\n";
      if (i == 3 && std::string(l) == "es") xnli += "\tneutral\tx\ty\t99\n";
    }
  }
  xlt::test::write_text(tmp_ / "xnli.tsv", xnli);
  const std::string cmd = "eval " + shell_quote(model_dir().string()) + " --data " +
                          shell_quote((tmp_ / "xnli.tsv").string()) +
                          " --langs en,es --skip-bad-rows --no-progress --bootstrap 10";
  auto r = run_xlt(cmd + " --samples 6");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("warning: --samples after --skip-bad-rows skipped rows whose language "
                       "could not be read (en, es)"),
            std::string::npos)
      << r.err;
  r = run_xlt(cmd);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err.find("warning: --samples"), std::string::npos) << r.err;
}

// A --source-lang that was not evaluated leaves the table without gaps; the run says why.
TEST_F(EvalCli, SourceLanguageNotEvaluatedIsNamed) {
  const std::string cmd = "eval " + shell_quote(model_dir().string()) +
                          " --data en=" + shell_quote((demo() / "dev-en.tsv").string()) +
                          " --data es=" + shell_quote((demo() / "dev-es.tsv").string()) +
                          " --samples 6 --no-progress --bootstrap 10 --threads 1";
  auto r = run_xlt(cmd + " --source-lang EN");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("note: no transfer gaps: the source language 'EN' (--source-lang) is not "
                       "among the evaluated languages (en, es)"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(r.out.find("gap "), std::string::npos) << r.out;
  r = run_xlt(cmd);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err.find("no transfer gaps"), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("gap en-x"), std::string::npos) << r.out;
}

// A pair longer than the model's 128 positions is named by file, line and language before the
// first language is evaluated (it failed inside the model, after the others had run).
TEST_F(EvalCli, PairsBeyondTheModelsPositionsAreNamed) {
  std::string words;
  for (int i = 0; i < 200; ++i) words += "the cat ";
  xlt::test::write_text(tmp_ / "long.tsv",
                        "short one\tshort two\tneutral\n" + words + "\tshort\tentailment\n");
  auto r = run_xlt("eval " + shell_quote(model_dir().string()) +
                   " --data en=" + shell_quote((demo() / "dev-en.tsv").string()) +
                   " --data es=" + shell_quote((tmp_ / "long.tsv").string()) +
                   " --max-length 512 --no-progress --bootstrap 10 --threads 1");
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("long.tsv:2 (es): a pair has "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(" tokens at --max-length 512 but the model's positions cover 128"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(r.err.find("xlt eval: en: 60 pairs in"), std::string::npos) << "en ran first";
  r = run_xlt("eval " + shell_quote(model_dir().string()) +
              " --data es=" + shell_quote((tmp_ / "long.tsv").string()) +
              " --max-length 128 --no-progress --bootstrap 10 --threads 1");
  EXPECT_EQ(r.exit_code, 0) << r.err;  // truncated to fit
}

TEST_F(EvalCli, HeadlessCheckpointGetsASeededHeadAndSaysSo) {
  const fs::path headless = tmp_ / "headless";
  fs::copy(model_dir(), headless);
  auto tensors = xlt::models::read_tensors(headless / "model.safetensors");
  std::vector<std::pair<std::string, at::Tensor>> kept;
  for (const auto& [name, t] : tensors)
    if (name.rfind("classifier.", 0) != 0) kept.emplace_back(name, t);
  ASSERT_EQ(kept.size() + 2, tensors.size());
  xlt::models::write_tensors(headless / "model.safetensors", kept);

  auto eval = [&](const std::string& name, int seed) {
    auto r = run_xlt("eval " + shell_quote(headless.string()) +
                     " --data en=" + shell_quote((demo() / "dev-en.tsv").string()) +
                     " --samples 6 --no-progress --threads 1 --seed " + std::to_string(seed) +
                     " --out " + shell_quote((tmp_ / name).string()));
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.err.find("no classification head"), std::string::npos) << r.err;
    return r;
  };
  eval("a", 11);
  eval("b", 11);
  eval("c", 12);
  json j = json::parse(xlt::test::read_text(tmp_ / "a" / "results.json"));
  EXPECT_EQ(j.at("head_initialized"), true);
  EXPECT_EQ(xlt::test::read_text(tmp_ / "a" / "predictions.jsonl"),
            xlt::test::read_text(tmp_ / "b" / "predictions.jsonl"));
  EXPECT_NE(xlt::test::read_text(tmp_ / "a" / "predictions.jsonl"),
            xlt::test::read_text(tmp_ / "c" / "predictions.jsonl"));
}

TEST_F(EvalCli, PermutedLabelOrderIsMappedByName) {
  // Same weights, classifier rows reordered to contradiction/entailment/neutral and id2label
  // saying so: mapped by name, every probability must land on the same data label.
  const fs::path permuted = tmp_ / "permuted";
  fs::copy(model_dir(), permuted);
  auto tensors = xlt::models::read_tensors(permuted / "model.safetensors");
  const at::Tensor order = at::tensor(std::vector<int64_t>{2, 0, 1}, at::kLong);
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (const auto& [name, t] : tensors)
    out.emplace_back(name, name.rfind("classifier.", 0) == 0 ? t.index_select(0, order) : t);
  xlt::models::write_tensors(permuted / "model.safetensors", out);
  json cfg = json::parse(xlt::test::read_text(permuted / "config.json"));
  cfg["id2label"] = {{"0", "contradiction"}, {"1", "entailment"}, {"2", "neutral"}};
  cfg["label2id"] = {{"contradiction", 0}, {"entailment", 1}, {"neutral", 2}};
  xlt::test::write_text(permuted / "config.json", cfg.dump(2));

  auto ds = xlt::data::read_nli_file(demo() / "dev-hi.tsv", "hi");
  ds.examples.resize(12);
  xlt::eval::EvalOptions o;
  o.progress = false;
  auto tok = xlt::text::load_tokenizer(model_dir());
  auto base = xlt::models::load_model(model_dir());
  auto perm = xlt::models::load_model(permuted);
  auto map = xlt::eval::map_labels(perm->config(), ds.labels);
  EXPECT_EQ(map.model_to_data, (std::vector<int>{2, 0, 1}));
  auto a = xlt::eval::evaluate_nli(*base, *tok, ds, o);
  o.label_map = map.model_to_data;
  auto b = xlt::eval::evaluate_nli(*perm, *tok, ds, o);
  EXPECT_EQ(a.pred, b.pred);
  for (int64_t i = 0; i < a.size(); ++i)
    for (int k = 0; k < 3; ++k) EXPECT_FLOAT_EQ(a.probs[i][k], b.probs[i][k]);

  // The CLI maps the same way and says so.
  auto r = run_xlt("eval " + shell_quote(permuted.string()) + " --data hi=" +
                   shell_quote((demo() / "dev-hi.tsv").string()) + " --no-progress");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("mapped by name"), std::string::npos) << r.err;
}

TEST_F(EvalCli, ErrorsExitWithInputCodes) {
  const fs::path unlabelled = tmp_ / "u.tsv";
  xlt::test::write_text(unlabelled, "A man sleeps.\tA man rests.\n");
  auto r = run_xlt("eval " + shell_quote(model_dir().string()) +
                   " --data en=" + shell_quote(unlabelled.string()) + " --no-progress");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("no gold label"), std::string::npos) << r.err;
  r = run_xlt("perplexity " + shell_quote(model_dir().string()) +
              " --text en=" + shell_quote((demo() / "text-en.txt").string()) + " --no-progress");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("causal language model"), std::string::npos) << r.err;

  // A 2-label head: the message points at --new-head, which eval has and which evaluates a
  // fresh 3-label head seeded by --seed.
  const fs::path two = tmp_ / "two";
  r = run_xlt("init-model --arch bert --config " +
              shell_quote((demo() / "bert-config.json").string()) + " --out " +
              shell_quote(two.string()) + " --num-labels 2");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string en = " --data en=" + shell_quote((demo() / "dev-en.tsv").string());
  r = run_xlt("eval " + shell_quote(two.string()) + en + " --no-progress");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--new-head"), std::string::npos) << r.err;
  r = run_xlt("eval " + shell_quote(two.string()) + en + " --new-head --no-progress --out " +
              shell_quote((tmp_ / "fresh").string()));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  const json j = json::parse(xlt::test::read_text(tmp_ / "fresh" / "results.json"));
  EXPECT_TRUE(j.at("head_initialized").get<bool>());
  EXPECT_TRUE(j.at("config").at("new_head").get<bool>());
  // The checkpoint had a head (of 2 labels): the note says it was replaced, not missing.
  EXPECT_NE(r.err.find("--new-head replaced the checkpoint's classification head"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(r.err.find("has no classification head"), std::string::npos) << r.err;
  EXPECT_EQ(j.at("languages").at("en").at("n"), 60);

  // A tokenizer with more tokens than the model has rows is refused when loaded, not when a
  // sentence first produces a high id (eval and the analysis commands alike).
  const fs::path big = tmp_ / "big";
  fs::copy(model_dir(), big);
  std::string vocab = xlt::test::read_text(big / "vocab.txt");
  for (int i = 0; i < 50; ++i) vocab += "zzword" + std::to_string(i) + "\n";
  xlt::test::write_text(big / "vocab.txt", vocab);
  for (const std::string& cmd : {"eval " + shell_quote(big.string()) + en + " --no-progress",
                                 "embed " + shell_quote(big.string()) + " --input en=" +
                                     shell_quote((demo() / "text-en.txt").string()) + " --out " +
                                     shell_quote((tmp_ / "e").string())}) {
    r = run_xlt(cmd);
    EXPECT_EQ(r.exit_code, 2) << cmd;
    EXPECT_NE(r.err.find("it is not this model's tokenizer"), std::string::npos) << r.err;
  }

  // A causal LM where a classifier is expected: exit 2 naming the folder and what is needed.
  const fs::path lm = tmp_ / "lm";
  r = run_xlt("init-model --arch xglm --config " +
              shell_quote((demo() / "xglm-config.json").string()) + " --out " +
              shell_quote(lm.string()));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = run_xlt("eval " + shell_quote(lm.string()) + en + " --no-progress");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find(lm.string() + ": an xglm model is a causal LM"), std::string::npos) << r.err;

  // --langs with LANG=PATH values picks among them; a language none gives is a usage error, not
  // silently ignored.
  r = run_xlt("eval " + shell_quote(model_dir().string()) + data_args() +
              " --langs hi,es --no-progress --out " + shell_quote((tmp_ / "two-langs").string()));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json picked = json::parse(xlt::test::read_text(tmp_ / "two-langs" / "results.json"));
  EXPECT_EQ(picked.at("languages").size(), 2u) << picked.at("languages").dump();
  EXPECT_TRUE(picked.at("languages").contains("es"));
  EXPECT_TRUE(picked.at("languages").contains("hi"));
  r = run_xlt("eval " + shell_quote(model_dir().string()) + data_args() +
              " --langs esp --no-progress --out " + shell_quote((tmp_ / "typo").string()));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("--langs names 'esp', which no --data LANG=PATH value gives (they give: "
                       "en, es, fr, hi)"),
            std::string::npos)
      << r.err;
  EXPECT_FALSE(fs::exists(tmp_ / "typo"));
}

TEST(PerplexityCli, WritesJsonMatchingTheLibrary) {
  XLT_REQUIRE_PATH(xglm_bpe_dir() / "sentencepiece.bpe.model");
  XLT_REQUIRE_PATH(xlt::test::fixtures_dir() / "xglm_tiny" / "config.json");
  xlt::test::TempDir tmp;
  auto [tok, model] = save_tiny_lm(tmp / "lm");

  const fs::path en = demo() / "text-en.txt", es = demo() / "text-es.txt";
  auto r = run_xlt("perplexity " + shell_quote((tmp / "lm").string()) + " --text " +
                   shell_quote(en.string() + "," + es.string()) +
                   " --langs en,es --max-length 32 --stride 16 --batch-size 3 --threads 1 "
                   "--no-progress --out " +
                   shell_quote((tmp / "out").string()));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("bits/byte"), std::string::npos);
  json j = json::parse(xlt::test::read_text(tmp / "out" / "perplexity.json"));
  EXPECT_EQ(j.at("config").at("stride"), 16);
  EXPECT_EQ(j.at("config").at("join"), "stream");

  xlt::eval::PerplexityOptions o;
  o.max_length = 32;
  o.stride = 16;
  o.progress = false;
  std::vector<std::string> lines;
  std::istringstream text(xlt::test::read_text(en));
  for (std::string l; std::getline(text, l);) lines.push_back(l);
  auto lib = xlt::eval::text_perplexity(*model, *tok, lines, o);
  const auto& got = j.at("languages").at("en");
  EXPECT_EQ(got.at("scored_tokens"), lib.scored_tokens);
  EXPECT_EQ(got.at("bytes"), lib.bytes);
  EXPECT_NEAR(got.at("perplexity").get<double>(), lib.perplexity, 1e-4 * lib.perplexity);
  EXPECT_NEAR(got.at("bits_per_byte").get<double>(), lib.bits_per_byte, 1e-4);
  EXPECT_TRUE(j.at("languages").contains("es"));
}

// Every --text file is read before the model loads (a bad last file fails at once, before any
// language is scored), and a byte-order mark is not scored as text.
TEST(PerplexityCli, TextsAreCheckedFirstAndAByteOrderMarkIsNotText) {
  XLT_REQUIRE_PATH(xglm_bpe_dir() / "sentencepiece.bpe.model");
  XLT_REQUIRE_PATH(xlt::test::fixtures_dir() / "xglm_tiny" / "config.json");
  xlt::test::TempDir tmp;
  save_tiny_lm(tmp / "lm");
  const std::string text = xlt::test::read_text(demo() / "text-en.txt");
  xlt::test::write_text(tmp / "plain.txt", text);
  xlt::test::write_text(tmp / "bom.txt", "\xEF\xBB\xBF" + text);
  xlt::test::write_text(tmp / "bad.txt", "fine\nnot \xFF utf-8\n");
  const std::string common = " --max-length 32 --stride 16 --threads 1 --no-progress";

  auto bad = run_xlt("perplexity " + shell_quote((tmp / "lm").string()) + " --text " +
                     shell_quote((tmp / "plain.txt").string() + "," + (tmp / "bad.txt").string()) +
                     " --langs en,es" + common + " --out " + shell_quote((tmp / "o1").string()));
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("bad.txt:2: invalid UTF-8 at byte 4 of the line (byte 0xFF)"),
            std::string::npos)
      << bad.err;
  EXPECT_EQ(bad.err.find("windows,"), std::string::npos) << "en was scored first: " << bad.err;
  EXPECT_FALSE(fs::exists(tmp / "o1"));

  auto scores = [&](const std::string& file, const std::string& out) {
    auto r = run_xlt("perplexity " + shell_quote((tmp / "lm").string()) + " --text " +
                     shell_quote((tmp / file).string()) + " --langs en" + common + " --out " +
                     shell_quote((tmp / out).string()));
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return json::parse(xlt::test::read_text(tmp / out / "perplexity.json"))
        .at("languages")
        .at("en");
  };
  const json plain = scores("plain.txt", "o2"), bom = scores("bom.txt", "o3");
  EXPECT_EQ(bom.at("tokens"), plain.at("tokens"));
  EXPECT_EQ(bom.at("bytes"), plain.at("bytes"));
  EXPECT_EQ(bom.at("perplexity"), plain.at("perplexity"));
}
