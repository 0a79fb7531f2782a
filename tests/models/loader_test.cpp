// The strict loader: every problem reported at once, legacy names and bare base-model checkpoints
// accepted, pretraining heads ignored, new heads initialised with HF's init, dtype conversion.
// Checkpoints are derived from the bert_tiny fixture by renaming/dropping/adding tensors.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <functional>

#include "common/test_env.h"
#include "xlt/core/error.h"
#include "xlt/io/config.h"
#include "xlt/models/model.h"
#include "xlt/models/tensor_io.h"

namespace xlt::test {
namespace {

namespace fs = std::filesystem;
using Tensors = std::vector<std::pair<std::string, at::Tensor>>;

fs::path bert_dir() {
  return fixtures_dir() / "bert_tiny";
}

// Copies bert_tiny's config and rewrites its weights through `edit`.
fs::path derived_checkpoint(const TempDir& tmp, const std::function<void(Tensors&)>& edit,
                            const fs::path& src = bert_dir()) {
  const fs::path dir = tmp.path() / "ckpt";
  fs::create_directories(dir);
  fs::copy_file(src / "config.json", dir / "config.json", fs::copy_options::overwrite_existing);
  Tensors tensors;
  for (auto& [name, t] : models::read_tensors(src / "model.safetensors")) {
    tensors.emplace_back(name, t);
  }
  edit(tensors);
  models::write_tensors(dir / "model.safetensors", tensors, {{"format", "pt"}});
  return dir;
}

void erase(Tensors& t, const std::string& name) {
  t.erase(std::remove_if(t.begin(), t.end(), [&](auto& p) { return p.first == name; }), t.end());
}

at::Tensor& find(Tensors& t, const std::string& name) {
  for (auto& [n, x] : t) {
    if (n == name) return x;
  }
  throw std::runtime_error("no tensor " + name);
}

std::string load_error(const fs::path& dir, const models::LoadOptions& opts = {}) {
  try {
    models::load_model(dir, opts);
  } catch (const CheckpointError& e) {
    return e.what();
  }
  return "";
}

TEST(Loader, ReportsEveryProblemInOneMessage) {
  XLT_REQUIRE_PATH(bert_dir());
  TempDir tmp;
  auto dir = derived_checkpoint(tmp, [](Tensors& t) {
    erase(t, "bert.encoder.layer.1.attention.self.key.bias");
    t.emplace_back("bert.encoder.layer.7.output.dense.weight", at::zeros({4, 4}));
    find(t, "bert.pooler.dense.weight") = at::zeros({32, 16});
    find(t, "classifier.bias") = at::zeros({3}, at::kInt);
  });
  const std::string msg = load_error(dir);
  ASSERT_FALSE(msg.empty()) << "loading a broken checkpoint succeeded";
  EXPECT_NE(msg.find("1 missing"), std::string::npos) << msg;
  EXPECT_NE(msg.find("bert.encoder.layer.1.attention.self.key.bias [32]"), std::string::npos)
      << msg;
  EXPECT_NE(msg.find("1 unexpected"), std::string::npos) << msg;
  EXPECT_NE(msg.find("bert.encoder.layer.7.output.dense.weight [4, 4]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("bert.pooler.dense.weight: checkpoint [32, 16], model [32, 32]"),
            std::string::npos)
      << msg;
  EXPECT_NE(msg.find("classifier.bias: I32"), std::string::npos) << msg;
  EXPECT_NE(msg.find("BertForSequenceClassification"), std::string::npos) << msg;
}

TEST(Loader, LegacyNamesAndBareBaseModelLoadToTheSameWeights) {
  XLT_REQUIRE_PATH(bert_dir());
  TempDir tmp;
  auto dir = derived_checkpoint(tmp, [](Tensors& t) {
    Tensors out;
    for (auto& [name, x] : t) {
      if (name.rfind("classifier.", 0) == 0) continue;  // BertModel.save_pretrained has no head
      std::string n = name.substr(std::string("bert.").size());
      if (n.size() > 17 && n.compare(n.size() - 17, 17, ".LayerNorm.weight") == 0) {
        n = n.substr(0, n.size() - 6) + "gamma";
      } else if (n.size() > 15 && n.compare(n.size() - 15, 15, ".LayerNorm.bias") == 0) {
        n = n.substr(0, n.size() - 4) + "beta";
      }
      out.emplace_back(n, x);
    }
    out.emplace_back("embeddings.position_ids", at::arange(64).unsqueeze(0));
    t = out;
  });
  auto legacy = models::load_model(dir);
  auto reference = models::load_model(bert_dir());
  const auto& report = legacy->load_report();
  EXPECT_EQ(report.loaded, 39);
  EXPECT_EQ(report.initialized, (std::vector<std::string>{"classifier.weight", "classifier.bias"}));
  EXPECT_EQ(report.ignored, (std::vector<std::string>{"embeddings.position_ids"}));
  EXPECT_EQ(report.renamed.size(), 39u);
  std::map<std::string, at::Tensor> ref;
  for (auto& [n, p] : reference->named_parameters()) ref[n] = p;
  for (auto& [n, p] : legacy->named_parameters()) {
    if (n.rfind("classifier.", 0) == 0) continue;
    EXPECT_TRUE(at::equal(p, ref.at(n))) << n;
  }
  EXPECT_NE(report.summary().find("newly initialised 2"), std::string::npos) << report.summary();
}

TEST(Loader, IgnoresPretrainingHeadsAndInitialisesMissingPooler) {
  XLT_REQUIRE_PATH(bert_dir());
  TempDir tmp;
  auto dir = derived_checkpoint(tmp, [](Tensors& t) {
    erase(t, "bert.pooler.dense.weight");
    erase(t, "bert.pooler.dense.bias");
    t.emplace_back("cls.predictions.bias", at::zeros({1000}));
    t.emplace_back("cls.predictions.transform.dense.weight", at::zeros({32, 32}));
  });
  auto model = models::load_model(dir);
  const auto& r = model->load_report();
  EXPECT_EQ(r.ignored.size(), 2u);
  EXPECT_EQ(r.initialized,
            (std::vector<std::string>{"bert.pooler.dense.weight", "bert.pooler.dense.bias"}));
}

TEST(Loader, PartiallyPresentHeadIsAnError) {
  XLT_REQUIRE_PATH(bert_dir());
  TempDir tmp;
  auto dir = derived_checkpoint(tmp, [](Tensors& t) { erase(t, "classifier.bias"); });
  const std::string msg = load_error(dir);
  EXPECT_NE(msg.find("classifier.bias [3]"), std::string::npos) << msg;
}

TEST(Loader, DifferentLabelCountNeedsNewHead) {
  XLT_REQUIRE_PATH(bert_dir());
  models::LoadOptions opts;
  opts.num_labels = 5;
  const std::string msg = load_error(bert_dir(), opts);
  EXPECT_NE(msg.find("classifier.weight: checkpoint [3, 32], model [5, 32]"), std::string::npos)
      << msg;
  EXPECT_NE(msg.find("new head"), std::string::npos) << msg;

  opts.new_head = true;
  opts.seed = 3;
  auto model = models::load_model(bert_dir(), opts);
  EXPECT_EQ(model->num_labels(), 5);
  EXPECT_EQ(model->config().id2label.at(4), "LABEL_4");
  EXPECT_EQ(model->config().label2id.at("LABEL_4"), 4);
  at::Tensor w, b;
  for (auto& [n, p] : model->named_parameters()) {
    if (n == "classifier.weight") w = p;
    if (n == "classifier.bias") b = p;
  }
  ASSERT_EQ(w.sizes(), (at::IntArrayRef{5, 32}));
  EXPECT_TRUE(at::equal(b, at::zeros({5})));
  // HF init: N(0, initializer_range = 0.02) over 160 draws.
  EXPECT_NEAR(w.std().item<double>(), 0.02, 0.004);
  EXPECT_NEAR(w.mean().item<double>(), 0.0, 0.005);
  // Same seed, same head.
  auto again = models::load_model(bert_dir(), opts);
  for (auto& [n, p] : again->named_parameters()) {
    if (n == "classifier.weight") {
      EXPECT_TRUE(at::equal(p, w));
    }
  }
}

TEST(Loader, ConvertsHalfPrecisionCheckpoints) {
  XLT_REQUIRE_PATH(bert_dir());
  TempDir tmp;
  auto dir = derived_checkpoint(tmp, [](Tensors& t) {
    for (auto& [n, x] : t)
      x = x.to(n.find("LayerNorm") != std::string::npos ? at::kHalf : at::kBFloat16);
  });
  auto model = models::load_model(dir);
  auto reference = models::read_tensors(bert_dir() / "model.safetensors");
  for (auto& [n, p] : model->named_parameters()) {
    EXPECT_EQ(p.scalar_type(), at::kFloat);
    auto rounded =
        reference.at(n).to(n.find("LayerNorm") != std::string::npos ? at::kHalf : at::kBFloat16);
    EXPECT_TRUE(at::equal(p, rounded.to(at::kFloat))) << n;
  }
}

TEST(Loader, MissingFilesAreInputErrors) {
  TempDir tmp;
  EXPECT_THROW(models::load_model(tmp / "nope"), IoError);
  fs::create_directories(tmp / "empty");
  EXPECT_THROW(models::load_model(tmp / "empty"), CheckpointError);
}

TEST(Loader, XglmIgnoresTiedLmHead) {
  XLT_REQUIRE_PATH(fixtures_dir() / "xglm_tiny");
  TempDir tmp;
  auto dir = derived_checkpoint(
      tmp,
      [](Tensors& t) { t.emplace_back("lm_head.weight", find(t, "model.embed_tokens.weight")); },
      fixtures_dir() / "xglm_tiny");
  auto model = models::load_model(dir);
  EXPECT_EQ(model->load_report().ignored, (std::vector<std::string>{"lm_head.weight"}));
  EXPECT_TRUE(model->output_embeddings().is_same(model->named_parameters().front().second));
}

// tie_word_embeddings: false (HF's XGLMForCausalLM then has a lm_head.weight of its own): the
// logits come from that matrix, the loader requires it, and a save writes it back.
TEST(Loader, XglmUntiedLmHeadIsItsOwnParameter) {
  const fs::path src = fixtures_dir() / "xglm_tiny";
  XLT_REQUIRE_PATH(src);
  TempDir tmp;
  const at::Tensor embed =
      models::read_tensors(src / "model.safetensors").at("model.embed_tokens.weight");
  const at::Tensor head = embed * 0.5 + 0.1;
  auto dir = derived_checkpoint(
      tmp, [&](Tensors& t) { t.emplace_back("lm_head.weight", head); }, src);
  auto config = io::ModelConfig::load(dir);
  config.tie_word_embeddings = false;
  config.save(dir / "config.json");
  auto model = models::load_model(dir);
  EXPECT_TRUE(model->load_report().ignored.empty());
  EXPECT_TRUE(at::equal(model->output_embeddings(), head));
  auto ref = models::read_tensors(src / "ref.safetensors");
  models::ModelInputs in;
  in.input_ids = ref.at("input_ids");
  in.attention_mask = ref.at("attention_mask");
  const auto out = model->forward(in, {});
  // The fixture's hidden states are HF's; the untied logits are them times the head's matrix
  // (compared at real tokens), and far from the tied logits.
  // (HF's last hidden_states entry is the final LayerNorm's output.)
  const at::Tensor hidden = ref.at("hidden_states." + std::to_string(config.num_hidden_layers));
  const at::Tensor real = in.attention_mask.to(at::kBool).unsqueeze(-1).expand_as(out.logits);
  auto max_diff = [&](const at::Tensor& expected) {
    return (out.logits - expected).abs().masked_select(real).max().item<double>();
  };
  EXPECT_LT(max_diff(at::linear(hidden, head)), 1e-4);
  EXPECT_GT(max_diff(at::linear(hidden, embed)), 1e-2);
  // Saved and reloaded with its own head.
  models::save_model(*model, tmp / "saved");
  EXPECT_TRUE(at::equal(
      models::read_tensors(tmp / "saved" / "model.safetensors").at("lm_head.weight"), head));
  // Without the tensor the checkpoint is incomplete, not silently tied.
  fs::create_directories(tmp / "dropped");
  fs::copy_file(dir / "config.json", tmp / "dropped" / "config.json");
  fs::copy_file(src / "model.safetensors", tmp / "dropped" / "model.safetensors");
  const std::string error = load_error(tmp / "dropped");
  EXPECT_NE(error.find("lm_head.weight"), std::string::npos) << error;
}

}  // namespace
}  // namespace xlt::test
