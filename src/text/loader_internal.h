// Internal pieces of load_tokenizer shared by the per-family loaders: the tokenizer
// configuration files of a folder (tokenizer_config.json, special_tokens_map.json, config.json,
// added_tokens.json) and the setup steps every tokenizer goes through.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "text/added_vocab.h"
#include "text/pipeline.h"

namespace xlt::text {

nlohmann::json read_json_file(const std::filesystem::path& path);
std::optional<nlohmann::json> read_json_if_exists(const std::filesystem::path& path);

// A special token named by the configuration.
struct ConfiguredToken {
  AddedToken token;
  bool has_flags = false;  // given as an object with lstrip/rstrip/... (not a plain string)
};

struct TokenizerConfig {
  std::filesystem::path dir;
  nlohmann::json config = nlohmann::json::object();             // tokenizer_config.json
  nlohmann::json special_map = nlohmann::json::object();        // special_tokens_map.json
  nlohmann::json model_config = nlohmann::json::object();       // config.json
  nlohmann::json added_tokens_json = nlohmann::json::object();  // added_tokens.json (legacy)

  // tokenizer_class (throws TokenizerError for an unsupported one), else model_type.
  std::optional<TokenizerFamily> family() const;
  std::optional<ConfiguredToken> special(const std::string& key) const;
  std::vector<AddedToken> additional_special() const;
  // tokenizer_config.json's added_tokens_decoder and added_tokens.json, with ids.
  std::vector<AddedToken> added_tokens_decoder() const;
  bool get_bool(const std::string& key, bool fallback) const;
  std::optional<bool> get_optional_bool(const std::string& key) const;
};

TokenizerConfig read_tokenizer_config(const std::filesystem::path& dir);

// The special tokens a tokenizer class has when the configuration does not name them.
struct SpecialDefaults {
  std::optional<AddedToken> unk, sep, pad, cls, mask, bos, eos;
  std::vector<AddedToken> additional;
};

// model_max_length, padding_side, clean_up_tokenization_spaces.
void apply_common_config(const TokenizerConfig& c, PipelineTokenizer& tok);
void setup_special_tokens(const TokenizerConfig& c, const SpecialDefaults& defaults,
                          PipelineTokenizer& tok, const std::string& vocab_source);
void setup_legacy_added(PipelineTokenizer& tok, std::size_t base_vocab_size);
TemplatePiece special_piece(const SpecialToken& t, int type_id);
TemplatePiece sequence_piece(int sequence, int type_id);

// "WordPiece", "Unigram", "BPE", ... (throws TokenizerError when the file has no model).
std::string tokenizer_json_model_type(const nlohmann::json& j, const std::filesystem::path& file);

std::unique_ptr<Tokenizer> load_bert_slow(const std::filesystem::path& vocab_txt,
                                          const TokenizerConfig& c, const LoadOptions& options);
std::unique_ptr<Tokenizer> load_bert_fast(const std::filesystem::path& file,
                                          const nlohmann::json& j, const TokenizerConfig& c,
                                          const LoadOptions& options);
std::unique_ptr<Tokenizer> load_spm(const std::filesystem::path& model_file,
                                    const TokenizerConfig& c, TokenizerFamily family);

}  // namespace xlt::text
