// A tokenizer.json whose fields have the wrong JSON type is a TokenizerError (exit 2) naming the
// file and the field. fuzz/tokenizer_json_fuzz found "clean_text": "[PAD]" escaping as
// nlohmann's json::type_error (an internal error, exit 3, naming neither).
#include <gtest/gtest.h>

#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "common/test_env.h"
#include "xlt/core/error.h"
#include "xlt/text/tokenizer.h"

namespace xlt::text {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;

// The committed fuzz seed: a small but complete BERT tokenizer.json.
json seed() {
  return json::parse(test::read_text(test::source_dir() / "fuzz" / "corpus" /
                                     "tokenizer_json_fuzz" / "wordpiece.json"));
}

struct Case {
  const char* field;  // what the message must name
  std::function<void(json&)> mutate;
};

TEST(TokenizerJsonTypes, WrongFieldTypesNameTheFieldAndExitTwo) {
  const std::vector<Case> cases = {
      {"normalizer.clean_text", [](json& j) { j["normalizer"]["clean_text"] = "[PAD]"; }},
      {"normalizer.lowercase", [](json& j) { j["normalizer"]["lowercase"] = 1; }},
      {"normalizer.type", [](json& j) { j["normalizer"]["type"] = json::array(); }},
      {"added_tokens[].id", [](json& j) { j["added_tokens"][0]["id"] = "zero"; }},
      {"added_tokens[].id", [](json& j) { j["added_tokens"][0]["id"] = 1e12; }},
      {"added_tokens[].content", [](json& j) { j["added_tokens"][1]["content"] = 7; }},
      {"added_tokens[].special", [](json& j) { j["added_tokens"][2]["special"] = "yes"; }},
      {"model.continuing_subword_prefix",
       [](json& j) { j["model"]["continuing_subword_prefix"] = false; }},
      {"model.max_input_chars_per_word",
       [](json& j) { j["model"]["max_input_chars_per_word"] = -3; }},
      {"pre_tokenizer.type", [](json& j) { j["pre_tokenizer"]["type"] = 3; }},
      {"decoder.cleanup", [](json& j) { j["decoder"]["cleanup"] = "no"; }},
      {"post_processor.type", [](json& j) { j["post_processor"]["type"] = nullptr; }},
  };
  const json base = seed();
  ASSERT_TRUE(base.contains("decoder") && base["decoder"].is_object());
  for (const Case& c : cases) {
    test::TempDir tmp;
    json j = base;
    c.mutate(j);
    test::write_text(tmp / "tokenizer.json", j.dump());
    try {
      load_tokenizer(tmp.path());
      ADD_FAILURE() << "expected TokenizerError for a wrong " << c.field;
    } catch (const TokenizerError& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find("tokenizer.json: " + std::string(c.field) + " must be"), std::string::npos)
          << msg;
      EXPECT_EQ(exit_code_for(e), 2);
    }
  }
  // The unmodified seed loads: the failures above come from the mutations.
  test::TempDir ok;
  test::write_text(ok / "tokenizer.json", base.dump());
  EXPECT_NO_THROW(load_tokenizer(ok.path()));
}

TEST(TokenizerJsonTypes, PostProcessorSpecialTokenIdsAreChecked) {
  json j = seed();
  ASSERT_EQ(j["post_processor"]["type"], "TemplateProcessing");
  j["post_processor"]["special_tokens"]["[CLS]"]["ids"][0] = "two";
  test::TempDir tmp;
  test::write_text(tmp / "tokenizer.json", j.dump());
  try {
    load_tokenizer(tmp.path());
    FAIL() << "expected TokenizerError";
  } catch (const TokenizerError& e) {
    EXPECT_NE(std::string(e.what()).find("post_processor.special_tokens.[CLS].ids[0] must be an "
                                         "integer in range, got \"two\""),
              std::string::npos)
        << e.what();
  }
}

// "post_processor": null is a tokenizer without one: the Rust library returns the sequences as
// they are (a pair's second with type id 1), no special tokens. It gave empty encodings.
TEST(TokenizerJsonTypes, NullPostProcessorKeepsTheSequences) {
  json j = seed();
  j["post_processor"] = nullptr;
  test::TempDir tmp;
  test::write_text(tmp / "tokenizer.json", j.dump());
  auto tok = load_tokenizer(tmp.path());
  const Encoding one = tok->encode("hello world");
  EXPECT_EQ(one.ids, (std::vector<TokenId>{5, 6}));
  const Encoding two = tok->encode_pair("hello", "worlds");
  EXPECT_EQ(two.ids, (std::vector<TokenId>{5, 6, 7}));
  EXPECT_EQ(two.token_type_ids, (std::vector<std::int32_t>{0, 1, 1}));
}

}  // namespace
}  // namespace xlt::text
