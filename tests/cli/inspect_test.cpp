// `xlt inspect` end to end on the fixture checkpoints: the JSON contract's fields and values
// (parameter counts recomputed here from the raw safetensors header, sizes from config.json),
// the human table, --tensors, and exit codes 1 (usage) and 2 (missing or corrupt model).
#include <nlohmann/json.hpp>

#include "common/test_env.h"

namespace {
namespace fs = std::filesystem;
using nlohmann::json;
using xlt::test::run_xlt;
using xlt::test::shell_quote;

// The header of a safetensors file, parsed here without xlt's reader.
json raw_header(const fs::path& file) {
  std::string raw = xlt::test::read_text(file);
  std::uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(raw[i]);
  return json::parse(raw.substr(8, n));
}

std::vector<fs::path> fixture_models() {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(xlt::test::fixtures_dir()))
    if (fs::exists(e.path() / "model.safetensors") && fs::exists(e.path() / "config.json"))
      out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

bool is_embedding(const std::string& name) {
  for (std::string s : {"word_embeddings.weight", "position_embeddings.weight",
                        "token_type_embeddings.weight", "embed_tokens.weight"})
    if (name.size() >= s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0)
      return true;
  return false;
}

TEST(CliInspect, JsonContractOnEveryFixture) {
  XLT_REQUIRE_PATH(xlt::test::fixtures_dir());
  auto dirs = fixture_models();
  ASSERT_FALSE(dirs.empty());
  for (const fs::path& dir : dirs) {
    SCOPED_TRACE(dir.string());
    auto r = run_xlt("inspect " + shell_quote(dir.string()) + " --json");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    json j = json::parse(r.out);  // exactly one JSON object on stdout
    json cfg = json::parse(xlt::test::read_text(dir / "config.json"));
    json header = raw_header(dir / "model.safetensors");

    int64_t total = 0, without = 0;
    std::map<std::string, int64_t> dtypes;
    for (const auto& [name, info] : header.items()) {
      if (name == "__metadata__") continue;
      int64_t numel = 1;
      for (int64_t d : info["shape"]) numel *= d;
      total += numel;
      if (!is_embedding(name)) without += numel;
      dtypes[info["dtype"]] += numel;
    }
    EXPECT_EQ(j["num_parameters"], total);
    EXPECT_EQ(j["num_parameters_without_embeddings"], without);
    EXPECT_LT(j["num_parameters_without_embeddings"].get<int64_t>(), total);
    EXPECT_EQ(j["dtypes"], json(dtypes));
    EXPECT_EQ(j["model_type"], cfg["model_type"]);
    EXPECT_EQ(j["architectures"], cfg["architectures"]);
    EXPECT_EQ(j["vocab_size"], cfg["vocab_size"]);
    const bool xglm = cfg["model_type"] == "xglm";
    EXPECT_EQ(j["num_layers"], cfg[xglm ? "num_layers" : "num_hidden_layers"]);
    EXPECT_EQ(j["hidden_size"], cfg[xglm ? "d_model" : "hidden_size"]);
    EXPECT_EQ(j["num_heads"], cfg[xglm ? "attention_heads" : "num_attention_heads"]);
    EXPECT_EQ(j["num_tensors"], header.size() - 1);
    EXPECT_EQ(j["total_bytes"], fs::file_size(dir / "model.safetensors"));
    EXPECT_FALSE(j.contains("tensors"));
  }
}

TEST(CliInspect, TensorsListing) {
  fs::path dir = xlt::test::fixtures_dir() / "bert_tiny";
  XLT_REQUIRE_PATH(dir);
  auto r = run_xlt("inspect " + shell_quote(dir.string()) + " --json --tensors");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json j = json::parse(r.out);
  json header = raw_header(dir / "model.safetensors");
  ASSERT_EQ(j["tensors"].size(), header.size() - 1);
  for (const auto& t : j["tensors"]) {
    const json& h = header.at(t["name"].get<std::string>());
    EXPECT_EQ(t["dtype"], h["dtype"]);
    EXPECT_EQ(t["shape"], h["shape"]);
  }
  // mBERT-like sizes: word embeddings are [vocab, hidden].
  bool found = false;
  for (const auto& t : j["tensors"]) {
    if (t["name"] == "bert.embeddings.word_embeddings.weight") {
      EXPECT_EQ(t["shape"], json({1000, 32}));
      found = true;
    }
  }
  EXPECT_TRUE(found);

  auto human = run_xlt("inspect " + shell_quote(dir.string()) + " --tensors");
  ASSERT_EQ(human.exit_code, 0) << human.err;
  EXPECT_NE(human.out.find("Parameters        52,419 (without embeddings: 18,307)"),
            std::string::npos)
      << human.out;
  EXPECT_NE(human.out.find("Model type        bert"), std::string::npos);
  EXPECT_NE(human.out.find("bert.embeddings.word_embeddings.weight"), std::string::npos);
  EXPECT_NE(human.out.find("[1000, 32]"), std::string::npos);
}

TEST(CliInspect, ExitCodes) {
  EXPECT_EQ(run_xlt("inspect").exit_code, 1);
  EXPECT_EQ(run_xlt("inspect --bogus x").exit_code, 1);

  xlt::test::TempDir tmp;
  auto missing = run_xlt("inspect " + shell_quote((tmp / "nothing").string()));
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_NE(missing.err.find((tmp / "nothing").string()), std::string::npos) << missing.err;

  // A corrupt checkpoint: the header claims more data than the file holds.
  fs::path model = tmp / "model";
  fs::create_directories(model);
  xlt::test::write_text(model / "config.json", R"({"model_type": "bert"})");
  std::string header = R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})";
  std::string raw(8, '\0');
  raw[0] = static_cast<char>(header.size());
  xlt::test::write_text(model / "model.safetensors", raw + header + std::string(8, '\0'));
  auto corrupt = run_xlt("inspect " + shell_quote(model.string()));
  EXPECT_EQ(corrupt.exit_code, 2);
  EXPECT_NE(corrupt.err.find((model / "model.safetensors").string()), std::string::npos)
      << corrupt.err;
  EXPECT_NE(corrupt.err.find("tensor 'w'"), std::string::npos) << corrupt.err;
  EXPECT_TRUE(corrupt.out.empty());

  // A config.json is not a shard index: the folder is what to give.
  auto config = run_xlt("inspect " + shell_quote((model / "config.json").string()));
  EXPECT_EQ(config.exit_code, 1);
  EXPECT_NE(config.err.find("is a model's config.json: give the model folder"), std::string::npos)
      << config.err;

  // A bad config names the config file.
  xlt::test::write_text(model / "config.json", R"({"model_type": "gpt2"})");
  auto bad_cfg = run_xlt("inspect " + shell_quote(model.string()));
  EXPECT_EQ(bad_cfg.exit_code, 2);
  EXPECT_NE(bad_cfg.err.find("config.json"), std::string::npos) << bad_cfg.err;
}

TEST(CliInspect, ResolvesHubCacheIds) {
  fs::path fixture = xlt::test::fixtures_dir() / "xglm_tiny";
  XLT_REQUIRE_PATH(fixture);
  xlt::test::TempDir tmp;
  const std::string commit(40, 'c');
  fs::path snap = tmp / "hub" / "models--facebook--xglm-tiny" / "snapshots" / commit;
  fs::create_directories(snap);
  fs::create_directories(tmp / "hub" / "models--facebook--xglm-tiny" / "refs");
  xlt::test::write_text(tmp / "hub" / "models--facebook--xglm-tiny" / "refs" / "main", commit);
  fs::create_symlink(fixture / "config.json", snap / "config.json");
  fs::create_symlink(fixture / "model.safetensors", snap / "model.safetensors");
  std::string env = "HF_HUB_CACHE=" + shell_quote((tmp / "hub").string()) + " ";
  auto r = xlt::test::run_command(env + shell_quote(xlt::test::cli_path().string()) +
                                  " inspect facebook/xglm-tiny --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json j = json::parse(r.out);
  EXPECT_EQ(j["source"], "hf-cache");
  EXPECT_EQ(j["commit"], commit);
  EXPECT_EQ(j["model_type"], "xglm");

  auto missing = xlt::test::run_command(env + shell_quote(xlt::test::cli_path().string()) +
                                        " inspect facebook/xglm-absent");
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_NE(missing.err.find((tmp / "hub").string()), std::string::npos) << missing.err;
}

}  // namespace
