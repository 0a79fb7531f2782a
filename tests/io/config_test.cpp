// config.json parsing: every fixture config, Hugging Face defaults for absent keys, XGLM's key
// mapping both ways, labels, and the errors for unknown model types and wrongly typed keys.
#include "xlt/io/config.h"

#include "common/test_env.h"
#include "xlt/core/error.h"

namespace xlt::io {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;
using test::TempDir;

// Asserts that parsing `j` throws ConfigError whose message contains every needle.
void expect_config_error(const json& j, std::initializer_list<std::string> needles) {
  try {
    ModelConfig::from_json(j, "cfg/config.json");
    ADD_FAILURE() << "expected ConfigError for " << j.dump();
  } catch (const ConfigError& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("cfg/config.json"), std::string::npos) << msg;
    for (const auto& n : needles) EXPECT_NE(msg.find(n), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << "one-line messages: " << msg;
  }
}

TEST(Config, EveryFixtureConfigRoundTrips) {
  XLT_REQUIRE_PATH(test::fixtures_dir());
  int seen = 0;
  for (const auto& e : fs::directory_iterator(test::fixtures_dir())) {
    if (!fs::exists(e.path() / "config.json")) continue;
    SCOPED_TRACE(e.path().string());
    ++seen;
    json original = json::parse(test::read_text(e.path() / "config.json"));
    ModelConfig c = ModelConfig::load(e.path());
    EXPECT_EQ(model_type_name(c.model_type), original["model_type"]);
    EXPECT_EQ(c.to_json(), original);
    // save() writes what save_pretrained wrote, byte for byte.
    TempDir tmp;
    c.save(tmp / "config.json");
    EXPECT_EQ(test::read_text(tmp / "config.json"), test::read_text(e.path() / "config.json"));
  }
  EXPECT_GE(seen, 3);
}

TEST(Config, BertFixtureValues) {
  fs::path dir = test::fixtures_dir() / "bert_tiny";
  XLT_REQUIRE_PATH(dir);
  ModelConfig c = ModelConfig::load(dir / "config.json");
  EXPECT_EQ(c.model_type, ModelType::kBert);
  EXPECT_EQ(c.architectures, std::vector<std::string>{"BertForSequenceClassification"});
  EXPECT_EQ(c.vocab_size, 1000);
  EXPECT_EQ(c.hidden_size, 32);
  EXPECT_EQ(c.num_hidden_layers, 2);
  EXPECT_EQ(c.num_attention_heads, 4);
  EXPECT_EQ(c.head_dim(), 8);
  EXPECT_EQ(c.intermediate_size, 64);
  EXPECT_EQ(c.max_position_embeddings, 64);
  EXPECT_EQ(c.type_vocab_size, 2);
  EXPECT_DOUBLE_EQ(c.layer_norm_eps, 1e-12);
  EXPECT_EQ(c.pad_token_id, 0);
  EXPECT_EQ(c.bos_token_id, -1);
  EXPECT_EQ(c.classifier_dropout, -1);
  EXPECT_EQ(c.num_labels, 3);
  EXPECT_EQ(c.id2label.at(2), "LABEL_2");
  EXPECT_EQ(c.label2id.at("LABEL_1"), 1);
  EXPECT_EQ(c.problem_type, "single_label_classification");
}

TEST(Config, XlmrFixtureValues) {
  fs::path dir = test::fixtures_dir() / "xlmr_tiny";
  XLT_REQUIRE_PATH(dir);
  ModelConfig c = ModelConfig::load(dir);
  EXPECT_EQ(c.model_type, ModelType::kXlmRoberta);
  EXPECT_EQ(c.pad_token_id, 1);
  EXPECT_EQ(c.bos_token_id, 0);
  EXPECT_EQ(c.eos_token_id, 2);
  EXPECT_EQ(c.type_vocab_size, 1);
  EXPECT_DOUBLE_EQ(c.layer_norm_eps, 1e-5);
}

TEST(Config, XglmKeysMapOntoCommonFields) {
  fs::path dir = test::fixtures_dir() / "xglm_tiny";
  XLT_REQUIRE_PATH(dir);
  ModelConfig c = ModelConfig::load(dir / "config.json");
  EXPECT_EQ(c.model_type, ModelType::kXglm);
  EXPECT_EQ(c.hidden_size, 32);
  EXPECT_EQ(c.num_hidden_layers, 2);
  EXPECT_EQ(c.num_attention_heads, 4);
  EXPECT_EQ(c.intermediate_size, 64);
  EXPECT_EQ(c.hidden_act, "gelu");
  EXPECT_DOUBLE_EQ(c.hidden_dropout_prob, 0.1);
  EXPECT_DOUBLE_EQ(c.attention_probs_dropout_prob, 0.1);
  EXPECT_DOUBLE_EQ(c.activation_dropout, 0.0);
  EXPECT_DOUBLE_EQ(c.initializer_range, 0.02);
  EXPECT_TRUE(c.scale_embedding);
  EXPECT_EQ(c.max_position_embeddings, 64);
  EXPECT_EQ(c.pad_token_id, 1);
  EXPECT_EQ(c.bos_token_id, 0);
  EXPECT_EQ(c.eos_token_id, 2);
  EXPECT_DOUBLE_EQ(c.layer_norm_eps, 1e-5);
  EXPECT_EQ(c.type_vocab_size, 0);

  // Written back with XGLM's names, never BERT's.
  c.hidden_size = 64;
  c.num_attention_heads = 8;
  c.hidden_act = "relu";
  json out = c.to_json();
  EXPECT_EQ(out["d_model"], 64);
  EXPECT_EQ(out["attention_heads"], 8);
  EXPECT_EQ(out["activation_function"], "relu");
  EXPECT_EQ(out["ffn_dim"], 64);
  EXPECT_EQ(out["num_layers"], 2);
  for (const char* k : {"hidden_size", "num_attention_heads", "num_hidden_layers",
                        "intermediate_size", "hidden_act", "layer_norm_eps", "type_vocab_size",
                        "position_embedding_type", "hidden_dropout_prob"})
    EXPECT_FALSE(out.contains(k)) << k;
}

TEST(Config, XglmAcceptsHfAttributeAliases) {
  // XGLMConfig.attribute_map lets hidden_size etc. stand for d_model etc.
  ModelConfig c = ModelConfig::from_json({{"model_type", "xglm"},
                                          {"hidden_size", 48},
                                          {"num_attention_heads", 6},
                                          {"vocab_size", 10}});
  EXPECT_EQ(c.hidden_size, 48);
  EXPECT_EQ(c.num_attention_heads, 6);
  EXPECT_EQ(c.to_json()["d_model"], 48);
  EXPECT_FALSE(c.to_json().contains("hidden_size"));
  expect_config_error({{"model_type", "xglm"}, {"d_model", 32}, {"hidden_size", 48}},
                      {"'hidden_size'", "d_model"});
}

TEST(Config, HuggingFaceDefaultsForAbsentKeys) {
  ModelConfig b = ModelConfig::from_json({{"model_type", "bert"}});
  EXPECT_EQ(b.vocab_size, 30522);
  EXPECT_EQ(b.hidden_size, 768);
  EXPECT_EQ(b.num_hidden_layers, 12);
  EXPECT_EQ(b.intermediate_size, 3072);
  EXPECT_EQ(b.max_position_embeddings, 512);
  EXPECT_EQ(b.type_vocab_size, 2);
  EXPECT_DOUBLE_EQ(b.layer_norm_eps, 1e-12);
  EXPECT_EQ(b.pad_token_id, 0);
  EXPECT_EQ(b.eos_token_id, -1);
  EXPECT_EQ(b.num_labels, 2);
  EXPECT_EQ(b.id2label.at(1), "LABEL_1");
  EXPECT_EQ(b.position_embedding_type, "absolute");

  ModelConfig x = ModelConfig::from_json({{"model_type", "xlm-roberta"}});
  EXPECT_EQ(x.pad_token_id, 1);
  EXPECT_EQ(x.bos_token_id, 0);
  EXPECT_EQ(x.eos_token_id, 2);
  EXPECT_DOUBLE_EQ(x.layer_norm_eps, 1e-12);  // XLMRobertaConfig's default (checkpoints say 1e-5)

  ModelConfig g = ModelConfig::from_json({{"model_type", "xglm"}});
  EXPECT_EQ(g.vocab_size, 256008);
  EXPECT_EQ(g.hidden_size, 1024);
  EXPECT_EQ(g.num_hidden_layers, 24);
  EXPECT_EQ(g.num_attention_heads, 16);
  EXPECT_EQ(g.intermediate_size, 4096);
  EXPECT_EQ(g.max_position_embeddings, 2048);
  EXPECT_EQ(g.decoder_start_token_id, 2);
  EXPECT_TRUE(g.scale_embedding);
  // Defaults do not leak into the saved file as labels.
  EXPECT_FALSE(g.to_json().contains("id2label"));
}

TEST(Config, LabelsFromNumLabelsAndNulls) {
  ModelConfig c = ModelConfig::from_json({{"model_type", "bert"},
                                          {"num_labels", 3},
                                          {"classifier_dropout", 0.2},
                                          {"bos_token_id", nullptr}});
  EXPECT_EQ(c.num_labels, 3);
  EXPECT_EQ(c.id2label.at(2), "LABEL_2");
  EXPECT_EQ(c.label2id.at("LABEL_2"), 2);
  EXPECT_DOUBLE_EQ(c.classifier_dropout, 0.2);
  EXPECT_EQ(c.bos_token_id, -1);
  json out = c.to_json();
  EXPECT_EQ(out["id2label"]["2"], "LABEL_2");
  EXPECT_FALSE(out.contains("num_labels"));

  ModelConfig named = ModelConfig::from_json(
      {{"model_type", "bert"},
       {"id2label", {{"1", "neutral"}, {"0", "entailment"}, {"2", "contradiction"}}}});
  EXPECT_EQ(named.num_labels, 3);
  EXPECT_EQ(named.id2label.at(0), "entailment");
  EXPECT_EQ(named.label2id.at("contradiction"), 2);
}

TEST(Config, UnknownModelTypeListsSupported) {
  expect_config_error({{"model_type", "gpt2"}}, {"gpt2", "bert", "xlm-roberta", "xglm"});
  expect_config_error({{"hidden_size", 8}}, {"model_type", "bert, xlm-roberta, xglm"});
}

TEST(Config, WrongTypesNameTheKey) {
  expect_config_error({{"model_type", "bert"}, {"hidden_size", "32"}},
                      {"'hidden_size'", "integer"});
  expect_config_error({{"model_type", "bert"}, {"hidden_size", 32.5}}, {"'hidden_size'"});
  expect_config_error({{"model_type", "bert"}, {"layer_norm_eps", "1e-12"}}, {"'layer_norm_eps'"});
  expect_config_error({{"model_type", "bert"}, {"hidden_act", 3}}, {"'hidden_act'", "string"});
  expect_config_error({{"model_type", "xglm"}, {"scale_embedding", 1}}, {"'scale_embedding'"});
  expect_config_error({{"model_type", "xglm"}, {"d_model", true}}, {"'d_model'"});
  expect_config_error({{"model_type", 5}}, {"'model_type'"});
  expect_config_error({{"model_type", "bert"}, {"architectures", "Bert"}}, {"'architectures'"});
  expect_config_error({{"model_type", "bert"}, {"id2label", {{"zero", "a"}}}},
                      {"'id2label'", "zero"});
  expect_config_error({{"model_type", "bert"}, {"id2label", {{"0", "a"}, {"5", "b"}}}},
                      {"'id2label'", "0..1"});
  expect_config_error({{"model_type", "bert"}, {"label2id", {{"a", "0"}}}}, {"'label2id'"});
  expect_config_error({{"model_type", "bert"}, {"num_labels", 3}, {"id2label", {{"0", "a"}}}},
                      {"'num_labels'"});
}

TEST(Config, InvalidValuesNameTheKey) {
  expect_config_error({{"model_type", "bert"}, {"hidden_size", 30}, {"num_attention_heads", 4}},
                      {"'hidden_size'", "divisible"});
  expect_config_error({{"model_type", "xglm"}, {"d_model", 30}, {"attention_heads", 4}},
                      {"'d_model'", "divisible"});
  expect_config_error({{"model_type", "bert"}, {"vocab_size", 0}}, {"'vocab_size'", "positive"});
  expect_config_error({{"model_type", "bert"}, {"hidden_dropout_prob", 1.5}},
                      {"'hidden_dropout_prob'"});
  expect_config_error({{"model_type", "bert"}, {"vocab_size", 10}, {"pad_token_id", 10}},
                      {"'pad_token_id'"});
  expect_config_error({{"model_type", "bert"}, {"pad_token_id", -3}}, {"'pad_token_id'"});
  // Refused when the file is read (naming it and the key), not later when the model is built.
  expect_config_error({{"model_type", "bert"}, {"hidden_act", "swish"}},
                      {"'hidden_act'", "'swish' is not supported", "gelu_fast"});
  expect_config_error({{"model_type", "xglm"}, {"activation_function", "silu"}},
                      {"'activation_function'", "'silu'"});
  expect_config_error({{"model_type", "bert"}, {"position_embedding_type", "relative_key"}},
                      {"'position_embedding_type'", "only 'absolute'"});
  expect_config_error({{"model_type", "bert"}, {"problem_type", "ranking"}},
                      {"'problem_type'", "'ranking'"});
  expect_config_error({{"model_type", "xglm"}, {"pad_token_id", nullptr}},
                      {"'pad_token_id'", "XGLM model needs one"});
  expect_config_error({{"model_type", "xglm"}, {"tie_word_embeddings", nullptr}},
                      {"'tie_word_embeddings'", "true or false"});
  // gelu_python is HF's erf GELU written in Python: the same function as gelu.
  EXPECT_EQ(
      ModelConfig::from_json({{"model_type", "bert"}, {"hidden_act", "gelu_python"}}).hidden_act,
      "gelu_python");
}

TEST(Config, TieWordEmbeddingsIsReadAndWrittenBack) {
  EXPECT_TRUE(ModelConfig::from_json({{"model_type", "xglm"}}).tie_word_embeddings);
  ModelConfig c = ModelConfig::from_json({{"model_type", "xglm"}, {"tie_word_embeddings", false}});
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_EQ(c.to_json().at("tie_word_embeddings"), false);
  EXPECT_FALSE(
      ModelConfig::defaults(io::ModelType::kXglm).to_json().contains("tie_word_embeddings"));
}

TEST(Config, LoadErrorsNameTheFile) {
  TempDir tmp;
  test::write_text(tmp / "config.json", "{\"model_type\": \"bert\",}");
  try {
    ModelConfig::load(tmp / "config.json");
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find((tmp / "config.json").string()), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("malformed JSON"), std::string::npos);
  }
  test::write_text(tmp / "config.json",
                   R"({"model_type": "bert", "hidden_size": 8, "hidden_size": 16})");
  try {
    ModelConfig::load(tmp.path());
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("duplicate key 'hidden_size'"), std::string::npos);
  }
  EXPECT_THROW(ModelConfig::load(tmp / "missing.json"), IoError);
}

TEST(Config, SaveIsAsciiAndReloads) {
  TempDir tmp;
  ModelConfig c = ModelConfig::from_json(
      {{"model_type", "xlm-roberta"}, {"id2label", {{"0", "négatif"}, {"1", "positif"}}}});
  c.save(tmp / "config.json");
  std::string text = test::read_text(tmp / "config.json");
  EXPECT_NE(text.find("n\\u00e9gatif"), std::string::npos);
  ModelConfig back = ModelConfig::load(tmp / "config.json");
  EXPECT_EQ(back.id2label, c.id2label);
  EXPECT_EQ(back.to_json(), c.to_json());
}

}  // namespace
}  // namespace xlt::io
