// `xlt forward` and `xlt init-model` end to end: the CLI's output file holds the fixture's tensor
// names with the same values as Hugging Face's, and init-model writes a folder that loads back.
#include <gtest/gtest.h>

#include "common/test_env.h"
#include "parity/parity_util.h"
#include "xlt/models/model.h"
#include "xlt/models/tensor_io.h"

namespace xlt::test {
namespace {

namespace fs = std::filesystem;

class CliForward : public ::testing::TestWithParam<fs::path> {};

TEST_P(CliForward, OutputsMatchReference) {
  const fs::path dir = GetParam();
  const auto ref = load_reference(dir);
  TempDir tmp;
  const fs::path out = tmp / "out.safetensors";
  auto r =
      run_xlt("forward " + shell_quote(dir.string()) + " --inputs " +
              shell_quote((dir / "ref.safetensors").string()) + " --output " +
              shell_quote(out.string()) + " --hidden-states --attentions --labels --threads 1");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("loss "), std::string::npos) << r.out;
  auto got = models::read_tensors(out);
  const bool xglm = ref.manifest.value("model_class", "") == "XGLMForCausalLM";
  int compared = 0;
  for (const auto& [name, t] : got) {
    std::string ref_name = name;
    // XGLM's fixture stores the final (normed) state only as the last hidden_states entry.
    if (name == "last_hidden_state" && !ref.has(name)) {
      int last = 0;
      while (ref.has("hidden_states." + std::to_string(last + 1))) ++last;
      ref_name = "hidden_states." + std::to_string(last);
    }
    ASSERT_TRUE(ref.has(ref_name)) << "xlt forward wrote '" << name << "', unknown to the fixture";
    // Same tolerances as model_parity_test.cpp (XGLM: 1e-5 + 1e-5 relative).
    expect_close(t, ref.get(ref_name), 1e-5, xglm ? 1e-5 : 0.0, name);
    ++compared;
  }
  for (const char* must : {"logits", "loss", "hidden_states.0", "attentions.0"}) {
    EXPECT_TRUE(got.count(must)) << must;
  }
  EXPECT_GE(compared, 7);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, CliForward, ::testing::ValuesIn(model_fixture_dirs()),
                         [](const auto& info) { return fixture_name(info.param); });
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(CliForward);

TEST(CliForwardErrors, MissingInputTensorIsBadInput) {
  XLT_REQUIRE_PATH(fixtures_dir() / "bert_tiny");
  TempDir tmp;
  models::write_tensors(tmp / "in.safetensors", {{"attention_mask", at::ones({1, 3}, at::kLong)}});
  auto r = run_xlt("forward " + shell_quote((fixtures_dir() / "bert_tiny").string()) +
                   " --inputs " + shell_quote((tmp / "in.safetensors").string()) + " --output " +
                   shell_quote((tmp / "out.safetensors").string()));
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("input_ids"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(tmp / "out.safetensors"));
}

TEST(CliInitModel, WritesALoadableModelWithTheRequestedLabels) {
  TempDir tmp;
  write_text(tmp / "config.json",
             R"({"model_type": "xlm-roberta", "vocab_size": 40, "hidden_size": 16,
                 "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 32,
                 "max_position_embeddings": 20, "type_vocab_size": 1, "pad_token_id": 1})");
  auto r = run_xlt("init-model --arch xlm-roberta --config " +
                   shell_quote((tmp / "config.json").string()) + " --out " +
                   shell_quote((tmp / "m").string()) + " --seed 3 --num-labels 4");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto model = models::load_model(tmp / "m");
  EXPECT_EQ(model->num_labels(), 4);
  EXPECT_EQ(model->load_report().loaded, model->named_parameters().size());
  EXPECT_TRUE(model->load_report().initialized.empty());
  auto cfg = nlohmann::json::parse(read_text(tmp / "m" / "config.json"));
  EXPECT_EQ(cfg.at("architectures"),
            nlohmann::json::array({"XLMRobertaForSequenceClassification"}));
  EXPECT_EQ(cfg.at("id2label").size(), 4u);

  // Same seed, same bytes.
  auto r2 = run_xlt("init-model --arch xlm-roberta --config " +
                    shell_quote((tmp / "config.json").string()) + " --out " +
                    shell_quote((tmp / "m2").string()) + " --seed 3 --num-labels 4");
  ASSERT_EQ(r2.exit_code, 0) << r2.err;
  EXPECT_EQ(read_text(tmp / "m" / "model.safetensors"),
            read_text(tmp / "m2" / "model.safetensors"));

  auto bad =
      run_xlt("init-model --arch bert --config " + shell_quote((tmp / "config.json").string()) +
              " --out " + shell_quote((tmp / "m3").string()));
  EXPECT_EQ(bad.exit_code, 1) << bad.err;
  EXPECT_NE(bad.err.find("model_type"), std::string::npos) << bad.err;

  // --num-labels 0 is a mistake on the command line, not "from config" (the library's default).
  auto zero = run_xlt("init-model --arch xlm-roberta --config " +
                      shell_quote((tmp / "config.json").string()) + " --out " +
                      shell_quote((tmp / "m0").string()) + " --num-labels 0");
  EXPECT_EQ(zero.exit_code, 1) << zero.err;
  EXPECT_NE(zero.err.find("--num-labels"), std::string::npos) << zero.err;
  EXPECT_FALSE(fs::exists(tmp / "m0"));

  // A malformed config names where it breaks, not only that it is no JSON object.
  write_text(tmp / "broken.json", "{\"vocab_size\": 100,");
  auto broken =
      run_xlt("init-model --arch bert --config " + shell_quote((tmp / "broken.json").string()) +
              " --out " + shell_quote((tmp / "m4").string()));
  EXPECT_EQ(broken.exit_code, 2) << broken.err;
  EXPECT_NE(broken.err.find("broken.json: malformed JSON at byte"), std::string::npos)
      << broken.err;
  EXPECT_FALSE(fs::exists(tmp / "m4"));
}

// The tokenizer beside a config comes along only when it is the architecture's: the demo folder
// holds a WordPiece vocabulary and both a BERT and an XGLM config.
TEST(CliInitModel, CopiesOnlyATokenizerOfTheArchitecture) {
  TempDir tmp;
  const fs::path demo = source_dir() / "examples" / "demo";
  auto r = run_xlt("init-model --arch xglm --config " +
                   shell_quote((demo / "xglm-config.json").string()) + " --out " +
                   shell_quote((tmp / "lm").string()));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(fs::exists(tmp / "lm" / "model.safetensors"));
  EXPECT_FALSE(fs::exists(tmp / "lm" / "vocab.txt")) << "BERT's vocabulary copied into an XGLM";
  EXPECT_FALSE(fs::exists(tmp / "lm" / "tokenizer_config.json"));
  r = run_xlt("init-model --arch bert --config " +
              shell_quote((demo / "bert-config.json").string()) + " --out " +
              shell_quote((tmp / "enc").string()));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(read_text(tmp / "enc" / "vocab.txt"), read_text(demo / "vocab.txt"));
  EXPECT_TRUE(fs::exists(tmp / "enc" / "tokenizer_config.json"));
}

}  // namespace
}  // namespace xlt::test
