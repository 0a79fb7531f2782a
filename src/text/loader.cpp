// load_tokenizer: finds out which tokenizer a folder or file holds (tokenizer_config.json's
// tokenizer_class, else config.json's model_type, else the files present), reads the
// vocabulary and the special-token configuration the way transformers does, and builds the
// matching pipeline (slow BertTokenizer, fast tokenizer.json WordPiece, XLM-R, XGLM).
#include <fstream>
#include <limits>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/json_strict.h"
#include "core/strings.h"
#include "text/bert_tokenizer.h"
#include "text/loader_internal.h"
#include "text/spm_tokenizer.h"
#include "text/unicode.h"
#include "xlt/core/error.h"

namespace xlt::text {
using xlt::detail::ends_with;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string strip_fast_suffix(std::string name) {
  const std::string fast = "Fast";
  if (name.size() > fast.size() &&
      name.compare(name.size() - fast.size(), fast.size(), fast) == 0) {
    name.resize(name.size() - fast.size());
  }
  return name;
}

// The tokenizer family a tokenizer_class or model_type names; nullopt when unknown.
std::optional<TokenizerFamily> family_of_class(const std::string& cls) {
  const std::string c = strip_fast_suffix(cls);
  if (c == "BertTokenizer") return TokenizerFamily::kBert;
  if (c == "XLMRobertaTokenizer") return TokenizerFamily::kXlmRoberta;
  if (c == "XGLMTokenizer") return TokenizerFamily::kXglm;
  return std::nullopt;
}

std::optional<TokenizerFamily> family_of_model_type(const std::string& t) {
  if (t == "bert") return TokenizerFamily::kBert;
  if (t == "xlm-roberta") return TokenizerFamily::kXlmRoberta;
  if (t == "xglm") return TokenizerFamily::kXglm;
  return std::nullopt;
}

std::string slow_class_name(TokenizerFamily f) {
  switch (f) {
    case TokenizerFamily::kBert:
      return "BertTokenizer";
    case TokenizerFamily::kXlmRoberta:
      return "XLMRobertaTokenizer";
    case TokenizerFamily::kXglm:
      return "XGLMTokenizer";
  }
  return "";
}

AddedToken added_from_json(const json& v, const std::string& where) {
  AddedToken t;
  if (v.is_string()) {
    t.content = v.get<std::string>();
    return t;
  }
  if (!v.is_object() || !v.contains("content") || !v["content"].is_string()) {
    throw TokenizerError(where + ": expected a token string or an object with \"content\"");
  }
  t.content = v["content"].get<std::string>();
  auto flag = [&](const char* key, bool fallback) {
    return v.contains(key) && v[key].is_boolean() ? v[key].get<bool>() : fallback;
  };
  t.lstrip = flag("lstrip", false);
  t.rstrip = flag("rstrip", false);
  t.single_word = flag("single_word", false);
  t.normalized = flag("normalized", false);
  t.special = flag("special", true);
  return t;
}

}  // namespace

json read_json_file(const fs::path& path) {
  if (!fs::exists(path)) throw FileNotFound(path.string() + ": no such file");
  if (!fs::is_regular_file(path)) {
    throw TokenizerError(path.string() + ": not a file");
  }
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  if (!in && !in.eof()) throw TokenizerError(path.string() + ": cannot be read");
  try {
    // Duplicate keys are refused: nlohmann would keep the last one and hide the first.
    return xlt::detail::parse_json_strict_sorted(ss.str());
  } catch (const xlt::detail::JsonParseFailure& e) {
    throw TokenizerError(path.string() + ": " + xlt::detail::describe(e));
  }
}

std::optional<json> read_json_if_exists(const fs::path& path) {
  if (!fs::exists(path)) return std::nullopt;
  json j = read_json_file(path);
  if (!j.is_object()) throw TokenizerError(path.string() + ": expected a JSON object");
  return j;
}

TokenizerConfig read_tokenizer_config(const fs::path& dir) {
  TokenizerConfig c;
  c.dir = dir;
  if (auto j = read_json_if_exists(dir / "tokenizer_config.json")) c.config = std::move(*j);
  if (auto j = read_json_if_exists(dir / "special_tokens_map.json")) c.special_map = std::move(*j);
  if (auto j = read_json_if_exists(dir / "config.json")) c.model_config = std::move(*j);
  if (auto j = read_json_if_exists(dir / "added_tokens.json")) c.added_tokens_json = std::move(*j);
  return c;
}

std::optional<TokenizerFamily> TokenizerConfig::family() const {
  if (config.contains("tokenizer_class") && config["tokenizer_class"].is_string()) {
    const std::string cls = config["tokenizer_class"].get<std::string>();
    auto f = family_of_class(cls);
    if (!f) {
      throw TokenizerError((dir / "tokenizer_config.json").string() + ": tokenizer_class '" + cls +
                           "' is not supported (supported: BertTokenizer, XLMRobertaTokenizer, "
                           "XGLMTokenizer and their Fast variants)");
    }
    return f;
  }
  if (model_config.contains("model_type") && model_config["model_type"].is_string()) {
    return family_of_model_type(model_config["model_type"].get<std::string>());
  }
  return std::nullopt;
}

std::optional<ConfiguredToken> TokenizerConfig::special(const std::string& key) const {
  // special_tokens_map.json overrides tokenizer_config.json, as in from_pretrained.
  for (const json* j : {&special_map, &config}) {
    if (j->contains(key) && !(*j)[key].is_null()) {
      const json& v = (*j)[key];
      return ConfiguredToken{
          added_from_json(v, (dir / "tokenizer_config.json").string() + " " + key), v.is_object()};
    }
  }
  return std::nullopt;
}

std::vector<AddedToken> TokenizerConfig::additional_special() const {
  std::vector<AddedToken> out;
  for (const json* j : {&special_map, &config}) {
    if (j->contains("additional_special_tokens") && (*j)["additional_special_tokens"].is_array()) {
      for (const json& v : (*j)["additional_special_tokens"]) {
        out.push_back(added_from_json(v, "additional_special_tokens"));
      }
      return out;
    }
  }
  return out;
}

std::vector<AddedToken> TokenizerConfig::added_tokens_decoder() const {
  std::vector<AddedToken> out;
  if (config.contains("added_tokens_decoder") && config["added_tokens_decoder"].is_object()) {
    for (const auto& [key, v] : config["added_tokens_decoder"].items()) {
      const std::string where =
          (dir / "tokenizer_config.json").string() + " added_tokens_decoder[" + key + "]";
      AddedToken t = added_from_json(v, where);
      try {
        std::size_t used = 0;
        long id = std::stol(key, &used);
        if (used != key.size() || id < 0 || id > std::numeric_limits<TokenId>::max()) {
          throw std::invalid_argument("id");
        }
        t.id = static_cast<TokenId>(id);
      } catch (const std::exception&) {
        throw TokenizerError(where + ": the key must be a non-negative token id");
      }
      out.push_back(t);
    }
  }
  if (added_tokens_json.is_object()) {
    for (const auto& [content, v] : added_tokens_json.items()) {
      if (!v.is_number_integer()) {
        throw TokenizerError((dir / "added_tokens.json").string() + ": id of '" + content +
                             "' is not an integer");
      }
      AddedToken t;
      t.content = content;
      t.id = v.get<TokenId>();
      t.special = false;
      t.normalized = true;
      out.push_back(t);
    }
  }
  return out;
}

namespace {
// tokenizer_config.json values Python would read by truthiness ("false" is true, 0 is false):
// anything but a boolean (or null, Python's None) is refused rather than guessed.
[[noreturn]] void wrong_type(const TokenizerConfig& c, const std::string& key,
                             const std::string& expected) {
  throw TokenizerError((c.dir / "tokenizer_config.json").string() + ": " + key + " must be " +
                       expected + ", got " + c.config[key].dump());
}
}  // namespace

bool TokenizerConfig::get_bool(const std::string& key, bool fallback) const {
  if (!config.contains(key)) return fallback;
  // An explicit null reaches the Python class as None, which it reads as false.
  return get_optional_bool(key).value_or(false);
}

std::optional<bool> TokenizerConfig::get_optional_bool(const std::string& key) const {
  if (!config.contains(key) || config[key].is_null()) return std::nullopt;
  if (!config[key].is_boolean()) wrong_type(*this, key, "true or false");
  return config[key].get<bool>();
}

void apply_common_config(const TokenizerConfig& c, PipelineTokenizer& tok) {
  TokenizerInfo& info = tok.info_;
  info.model_max_length = std::numeric_limits<std::size_t>::max();
  if (c.config.contains("model_max_length") && !c.config["model_max_length"].is_null()) {
    if (!c.config["model_max_length"].is_number()) wrong_type(c, "model_max_length", "a number");
    const double v = c.config["model_max_length"].get<double>();
    if (v > 0 && v < 1e15) info.model_max_length = static_cast<std::size_t>(v);
  }
  // "left" / "right" ("" when absent, or null where `null_ok`), anything else refused naming
  // the key (transformers' padding_side cannot be None; truncation_side may).
  auto side_of = [&c](const char* key, bool null_ok) -> std::string {
    if (!c.config.contains(key) || (null_ok && c.config[key].is_null())) return "";
    if (!c.config[key].is_string()) wrong_type(c, key, "\"left\" or \"right\"");
    const std::string side = c.config[key].get<std::string>();
    if (side != "left" && side != "right") {
      throw TokenizerError((c.dir / "tokenizer_config.json").string() + ": " + key +
                           " must be \"left\" or \"right\", got \"" + side + "\"");
    }
    return side;
  };
  if (const std::string side = side_of("padding_side", false); !side.empty()) {
    info.padding_side = side == "left" ? PaddingSide::kLeft : PaddingSide::kRight;
  }
  // Both backends honour it in transformers: the slow tokenizer cuts from the start, and the fast
  // one hands the direction to the Rust library (set_truncation_and_padding).
  if (const std::string side = side_of("truncation_side", true); !side.empty()) {
    info.truncation_side = side == "left" ? TruncationSide::kLeft : TruncationSide::kRight;
  }
  tok.clean_up_tokenization_spaces = c.get_bool("clean_up_tokenization_spaces", true);
}

// Resolves the special tokens named by the configuration (defaults per family) to ids and adds
// them, with their flags, to the added vocabulary; every named token must exist.
void setup_special_tokens(const TokenizerConfig& c, const SpecialDefaults& defaults,
                          PipelineTokenizer& tok, const std::string& vocab_source) {
  // Added tokens declared by the configuration first: their ids win, as in transformers.
  for (const AddedToken& t : c.added_tokens_decoder()) tok.added.add(t);

  auto resolve = [&](const char* key, const std::optional<AddedToken>& fallback) -> SpecialToken {
    std::optional<ConfiguredToken> configured = c.special(key);
    AddedToken t;
    if (configured) {
      t = configured->token;
      // A plain string keeps the class's default flags (XLM-R's <mask> eats the space on its
      // left even when the configuration just says "<mask>").
      if (!configured->has_flags && fallback && fallback->content == t.content) t = *fallback;
    } else if (fallback) {
      t = *fallback;
    } else {
      return {};
    }
    const AddedToken* declared = tok.added.find(t.content);
    AddedToken merged = declared ? *declared : t;
    if (!declared) {
      auto id = tok.token_to_id(t.content);
      if (!id) {
        throw TokenizerError(vocab_source + ": special token " + std::string(key) + " '" +
                             t.content + "' is not in the vocabulary");
      }
      merged.id = *id;
    }
    merged.special = true;
    tok.added.add(merged);
    return {merged.content, merged.id};
  };
  SpecialTokens& s = tok.special_;
  s.unk = resolve("unk_token", defaults.unk);
  s.sep = resolve("sep_token", defaults.sep);
  s.pad = resolve("pad_token", defaults.pad);
  s.cls = resolve("cls_token", defaults.cls);
  s.mask = resolve("mask_token", defaults.mask);
  s.bos = resolve("bos_token", defaults.bos);
  s.eos = resolve("eos_token", defaults.eos);
  std::vector<AddedToken> extra = c.additional_special();
  for (const AddedToken& d : defaults.additional) {
    bool listed = false;
    for (const AddedToken& e : extra) listed |= e.content == d.content;
    if (!listed) extra.push_back(d);
  }
  for (const AddedToken& e : extra) {
    const AddedToken* declared = tok.added.find(e.content);
    AddedToken merged = declared ? *declared : e;
    if (!declared) {
      auto id = tok.token_to_id(e.content);
      if (!id) {
        throw TokenizerError(vocab_source + ": additional special token '" + e.content +
                             "' is not in the vocabulary");
      }
      merged.id = *id;
    }
    merged.special = true;
    tok.added.add(merged);
    s.additional.push_back({merged.content, merged.id});
  }
  tok.finish_setup();
}

// transformers' legacy_added_tokens: added tokens that are not special, plus additional special
// tokens outside the base vocabulary.
void setup_legacy_added(PipelineTokenizer& tok, std::size_t base_vocab_size) {
  for (const AddedToken& t : tok.added.tokens()) {
    bool is_special = tok.all_special_ids.count(t.id) > 0;
    if (!is_special && !t.special) tok.legacy_added_tokens.insert(t.content);
  }
  for (const SpecialToken& t : tok.special_.additional) {
    if (static_cast<std::size_t>(t.id) >= base_vocab_size)
      tok.legacy_added_tokens.insert(t.content);
  }
}

TemplatePiece special_piece(const SpecialToken& t, int type_id) {
  TemplatePiece p;
  p.id = t.id;
  p.token = t.content;
  p.type_id = type_id;
  return p;
}

TemplatePiece sequence_piece(int sequence, int type_id) {
  TemplatePiece p;
  p.is_sequence = true;
  p.sequence = sequence;
  p.type_id = type_id;
  return p;
}

namespace {

std::unique_ptr<Tokenizer> load_slow_from_dir(const fs::path& dir, const TokenizerConfig& c,
                                              const LoadOptions& options,
                                              std::optional<TokenizerFamily> family) {
  if (!family) {
    if (fs::exists(dir / "vocab.txt")) family = TokenizerFamily::kBert;
  }
  if (!family) {
    throw TokenizerError(dir.string() +
                         ": cannot tell which tokenizer this is: no tokenizer.json, "
                         "no vocab.txt, and neither tokenizer_config.json's tokenizer_class nor "
                         "config.json's model_type names a supported one (BertTokenizer, "
                         "XLMRobertaTokenizer, XGLMTokenizer)");
  }
  if (*family == TokenizerFamily::kBert) {
    const fs::path vocab = dir / "vocab.txt";
    if (!fs::exists(vocab)) {
      throw TokenizerError(dir.string() + ": a BertTokenizer needs vocab.txt, which is missing");
    }
    return load_bert_slow(vocab, c, options);
  }
  const fs::path model = dir / "sentencepiece.bpe.model";
  if (!fs::exists(model)) {
    throw TokenizerError(dir.string() + ": a " + slow_class_name(*family) +
                         " needs sentencepiece.bpe.model, which is missing");
  }
  return load_spm(model, c, *family);
}

std::unique_ptr<Tokenizer> load_any(const fs::path& path, const LoadOptions& options) {
  if (!fs::exists(path)) {
    throw FileNotFound(path.string() + ": no such tokenizer file or folder");
  }
  if (fs::is_directory(path)) {
    TokenizerConfig c = read_tokenizer_config(path);
    std::optional<TokenizerFamily> family = c.family();
    const fs::path fast = path / "tokenizer.json";
    if (fs::exists(fast) && !options.prefer_slow) {
      json j = read_json_file(fast);
      std::string model_type = tokenizer_json_model_type(j, fast);
      if (model_type == "WordPiece") return load_bert_fast(fast, j, c, options);
      // AutoTokenizer would build a Unigram/BPE pipeline from tokenizer.json; xlt reads the
      // SentencePiece model beside it, which gives the slow tokenizer's ids.
      if (family && *family != TokenizerFamily::kBert &&
          fs::exists(path / "sentencepiece.bpe.model")) {
        return load_slow_from_dir(path, c, options, family);
      }
      throw TokenizerError(fast.string() + ": model type '" + model_type +
                           "' is not supported in tokenizer.json (supported: WordPiece); for "
                           "XLM-R/XGLM keep sentencepiece.bpe.model beside it");
    }
    return load_slow_from_dir(path, c, options, family);
  }

  const fs::path dir = path.has_parent_path() ? path.parent_path() : fs::path(".");
  TokenizerConfig c = read_tokenizer_config(dir);
  const std::string name = path.filename().string();
  if (ends_with(name, ".json")) {
    json j = read_json_file(path);
    std::string model_type = tokenizer_json_model_type(j, path);
    if (model_type != "WordPiece") {
      throw TokenizerError(path.string() + ": model type '" + model_type +
                           "' is not supported in tokenizer.json (supported: WordPiece)");
    }
    return load_bert_fast(path, j, c, options);
  }
  if (ends_with(name, ".txt")) return load_bert_slow(path, c, options);
  if (ends_with(name, ".model")) {
    std::optional<TokenizerFamily> family = c.family();
    if (!family || *family == TokenizerFamily::kBert) {
      throw TokenizerError(path.string() +
                           ": cannot tell whether this SentencePiece model is XLM-R's or XGLM's; "
                           "put a tokenizer_config.json with tokenizer_class beside it");
    }
    return load_spm(path, c, *family);
  }
  throw TokenizerError(path.string() +
                       ": not a tokenizer file (expected vocab.txt, tokenizer.json, a "
                       "SentencePiece .model, or a folder holding them)");
}

}  // namespace

std::unique_ptr<Tokenizer> load_tokenizer(const fs::path& path, const LoadOptions& options) {
  try {
    return load_any(path, options);
  } catch (const nlohmann::json::exception& e) {
    // The loaders check each field's type and say which one is wrong; this keeps any check they
    // miss a TokenizerError (exit 2) rather than an internal error.
    throw TokenizerError(path.string() + ": unexpected value in a tokenizer file (" +
                         std::string(e.what()) + ")");
  }
}

}  // namespace xlt::text
