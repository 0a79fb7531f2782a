// Fixture checkpoints against their config.json sizes (every tensor shape that a size governs),
// and the summary's parameter accounting.
#include "xlt/io/model_summary.h"

#include "common/test_env.h"
#include "xlt/core/error.h"

namespace xlt::io {
namespace {
namespace fs = std::filesystem;

std::string find_suffix(const Checkpoint& ck, const std::string& suffix) {
  for (const auto& n : ck.names())
    if (n.size() >= suffix.size() &&
        n.compare(n.size() - suffix.size(), suffix.size(), suffix) == 0)
      return n;
  return "";
}

void expect_shape(const Checkpoint& ck, const std::string& name, std::vector<int64_t> shape) {
  const TensorView* t = ck.find(name);
  ASSERT_NE(t, nullptr) << "missing " << name;
  EXPECT_EQ(t->shape, shape) << name;
}

TEST(ModelSummary, FixtureShapesFollowTheirConfig) {
  XLT_REQUIRE_PATH(test::fixtures_dir());
  int seen = 0;
  for (const auto& e : fs::directory_iterator(test::fixtures_dir())) {
    const fs::path& dir = e.path();
    if (!fs::exists(dir / "model.safetensors")) continue;
    SCOPED_TRACE(dir.string());
    ++seen;
    ModelConfig c = ModelConfig::load(dir);
    Checkpoint ck = Checkpoint::open(dir);
    const int64_t H = c.hidden_size, F = c.intermediate_size, V = c.vocab_size;
    for (const auto& n : ck.names()) EXPECT_EQ(ck.tensor(n).dtype, DType::F32) << n;
    if (c.model_type == ModelType::kXglm) {
      expect_shape(ck, "model.embed_tokens.weight", {V, H});
      for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
        std::string p = "model.layers." + std::to_string(i) + ".";
        expect_shape(ck, p + "self_attn.q_proj.weight", {H, H});
        expect_shape(ck, p + "self_attn.out_proj.weight", {H, H});
        expect_shape(ck, p + "fc1.weight", {F, H});
        expect_shape(ck, p + "fc2.weight", {H, F});
      }
      EXPECT_FALSE(
          ck.contains("model.layers." + std::to_string(c.num_hidden_layers) + ".fc1.weight"));
      EXPECT_FALSE(ck.contains("lm_head.weight"));  // tied to embed_tokens, not saved
    } else {
      std::string word = find_suffix(ck, "embeddings.word_embeddings.weight");
      ASSERT_FALSE(word.empty());
      std::string base = word.substr(0, word.find("embeddings."));
      expect_shape(ck, word, {V, H});
      expect_shape(ck, base + "embeddings.position_embeddings.weight",
                   {c.max_position_embeddings, H});
      expect_shape(ck, base + "embeddings.token_type_embeddings.weight", {c.type_vocab_size, H});
      for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
        std::string p = base + "encoder.layer." + std::to_string(i) + ".";
        expect_shape(ck, p + "attention.self.query.weight", {H, H});
        expect_shape(ck, p + "intermediate.dense.weight", {F, H});
        expect_shape(ck, p + "output.dense.weight", {H, F});
      }
      EXPECT_FALSE(ck.contains(base + "encoder.layer." + std::to_string(c.num_hidden_layers) +
                               ".output.dense.weight"));
      // Sequence-classification heads end in num_labels outputs.
      std::string out =
          ck.contains("classifier.weight") ? "classifier.weight" : "classifier.out_proj.weight";
      expect_shape(ck, out, {c.num_labels, H});
    }

    ModelSummary s = summarize_model(dir);
    int64_t total = 0, emb = 0;
    for (const auto& n : ck.names()) {
      total += ck.tensor(n).numel();
      if (is_embedding_tensor(n)) emb += ck.tensor(n).numel();
    }
    EXPECT_EQ(s.num_parameters, total);
    EXPECT_EQ(s.num_parameters_without_embeddings, total - emb);
    EXPECT_EQ(s.dtype_parameters.at("F32"), total);
    EXPECT_EQ(s.tensors.size(), ck.names().size());
    EXPECT_EQ(s.total_bytes, fs::file_size(dir / "model.safetensors"));
  }
  EXPECT_GE(seen, 3);
}

// Counted as Hugging Face's num_parameters(): an lm_head tied to embed_tokens once, an integer
// buffer (position_ids, in older checkpoints) not at all; untied, the head counts.
TEST(ModelSummary, TiedHeadsAndBuffersAreNotParameters) {
  const fs::path xglm = test::fixtures_dir() / "xglm_tiny";
  XLT_REQUIRE_PATH(xglm / "model.safetensors");
  test::TempDir tmp;
  fs::copy(xglm, tmp / "m", fs::copy_options::recursive);
  const ModelSummary plain = summarize_model(tmp / "m");
  auto f = SafetensorsFile::open(xglm / "model.safetensors");
  std::vector<TensorView> tensors;
  for (const auto& n : f->names()) tensors.push_back(f->tensor(n));
  TensorView head = f->tensor("model.embed_tokens.weight");
  head.name = "lm_head.weight";
  tensors.push_back(head);
  const std::vector<int64_t> ids = {0, 1, 2, 3};
  tensors.push_back({"model.position_ids",
                     DType::I64,
                     {1, 4},
                     reinterpret_cast<const std::byte*>(ids.data()),
                     sizeof(int64_t) * 4});
  write_safetensors(tmp / "m" / "model.safetensors", tensors);
  const ModelSummary s = summarize_model(tmp / "m");
  EXPECT_EQ(s.tensors.size(), plain.tensors.size() + 2);
  EXPECT_EQ(s.num_parameters, plain.num_parameters);
  EXPECT_EQ(s.num_parameters_without_embeddings, plain.num_parameters_without_embeddings);
  EXPECT_EQ(s.dtype_parameters.count("I64"), 0u);
  const auto j = s.to_json(true);
  int marked = 0;
  for (const auto& t : j["tensors"]) {
    if (t["name"] == "lm_head.weight") {
      EXPECT_EQ(t["not_counted"], "tied");
      ++marked;
    } else if (t["name"] == "model.position_ids") {
      EXPECT_EQ(t["not_counted"], "buffer");
      ++marked;
    } else {
      EXPECT_FALSE(t.contains("not_counted")) << t["name"];
    }
  }
  EXPECT_EQ(marked, 2);
  // tie_word_embeddings = false: a head of its own.
  auto config = nlohmann::json::parse(test::read_text(tmp / "m" / "config.json"));
  config["tie_word_embeddings"] = false;
  test::write_text(tmp / "m" / "config.json", config.dump());
  EXPECT_EQ(summarize_model(tmp / "m").num_parameters, plain.num_parameters + head.numel());
}

TEST(ModelSummary, EmbeddingNames) {
  EXPECT_TRUE(is_embedding_tensor("bert.embeddings.word_embeddings.weight"));
  EXPECT_TRUE(is_embedding_tensor("roberta.embeddings.position_embeddings.weight"));
  EXPECT_TRUE(is_embedding_tensor("bert.embeddings.token_type_embeddings.weight"));
  EXPECT_TRUE(is_embedding_tensor("model.embed_tokens.weight"));
  EXPECT_FALSE(is_embedding_tensor("bert.embeddings.LayerNorm.weight"));
  EXPECT_FALSE(is_embedding_tensor("lm_head.weight"));
}

TEST(ModelSummary, PickleOnlyFolderExplainsConversion) {
  test::TempDir tmp;
  test::write_text(tmp / "config.json", R"({"model_type":"bert"})");
  test::write_text(tmp / "pytorch_model.bin", "x");
  try {
    summarize_model(tmp.path());
    FAIL();
  } catch (const CheckpointError& e) {
    EXPECT_NE(std::string(e.what()).find("safe_serialization"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("`xlt convert "), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace xlt::io
