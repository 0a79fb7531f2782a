// Loaders for the WordPiece tokenizers: transformers' slow BertTokenizer from vocab.txt (+
// tokenizer_config.json) and the Rust pipeline described by a tokenizer.json.
#include <algorithm>
#include <limits>
#include <type_traits>

#include "text/bert_tokenizer.h"
#include "text/loader_internal.h"
#include "text/unicode.h"
#include "xlt/core/error.h"
#include "xlt/core/file.h"

namespace xlt::text {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

SpecialDefaults bert_defaults() {
  auto tok = [](const char* s) {
    AddedToken t;
    t.content = s;
    return t;
  };
  SpecialDefaults d;
  d.unk = tok("[UNK]");
  d.sep = tok("[SEP]");
  d.pad = tok("[PAD]");
  d.cls = tok("[CLS]");
  d.mask = tok("[MASK]");
  return d;
}

// Lines as Python's text mode reads them (universal newlines: \n, \r\n and \r end a line).
std::vector<std::string> read_vocab_lines(const fs::path& path) {
  std::string data;
  try {
    data = read_file(path);
  } catch (const IoError& e) {
    throw TokenizerError(std::string(e.what()));
  }
  // Python's utf-8 codec keeps a BOM as U+FEFF at the start of the first token, which then
  // matches nothing (a special token "missing", or a silently different id).
  if (data.rfind("\xEF\xBB\xBF", 0) == 0) {
    throw TokenizerError(path.string() +
                         ":1: starts with a UTF-8 byte-order mark (EF BB BF), which would become "
                         "part of the first token; save the vocabulary without it");
  }
  const std::size_t bad = uni::find_invalid_utf8(data);
  if (bad != std::string::npos) {
    const std::size_t line =
        1 + static_cast<std::size_t>(
                std::count(data.begin(), data.begin() + static_cast<std::ptrdiff_t>(bad), '\n'));
    throw TokenizerError(path.string() + ":" + std::to_string(line) +
                         ": invalid UTF-8 at byte offset " + std::to_string(bad));
  }
  std::vector<std::string> lines;
  std::size_t start = 0;
  for (std::size_t i = 0; i < data.size(); ++i) {
    if (data[i] != '\n' && data[i] != '\r') continue;
    lines.emplace_back(data, start, i - start);
    if (data[i] == '\r' && i + 1 < data.size() && data[i + 1] == '\n') ++i;
    start = i + 1;
  }
  if (start < data.size()) lines.emplace_back(data, start, data.size() - start);
  if (lines.empty()) throw TokenizerError(path.string() + ": the vocabulary is empty");
  return lines;
}

std::unordered_set<std::string> never_split_of(const TokenizerConfig& c) {
  std::unordered_set<std::string> out;
  if (c.config.contains("never_split") && c.config["never_split"].is_array()) {
    for (const json& v : c.config["never_split"]) {
      if (v.is_string()) out.insert(v.get<std::string>());
    }
  }
  return out;
}

void finish_bert(BertTokenizer& tok, const TokenizerConfig& c, const std::string& source) {
  apply_common_config(c, tok);
  tok.vocab_size_ = tok.model().size();
  setup_special_tokens(c, bert_defaults(), tok, source);
  for (const AddedToken& t : tok.added.tokens()) {
    tok.vocab_size_ = std::max(tok.vocab_size_, static_cast<std::size_t>(t.id) + 1);
  }
  setup_legacy_added(tok, tok.model().size());
}

// Typed field access: nlohmann's value()/get() throw json::type_error on a wrong type, naming
// neither the file nor the field (fuzz/tokenizer_json_fuzz found "clean_text": "[PAD]").
std::string type_error(const fs::path& file, const std::string& what, const char* expected,
                       const json& v) {
  std::string shown = v.dump();
  if (shown.size() > 40) shown = shown.substr(0, 37) + "...";
  return file.string() + ": " + what + " must be " + expected + ", got " + shown;
}

template <typename T>
T as(const json& v, const fs::path& file, const std::string& what) {
  if constexpr (std::is_same_v<T, bool>) {
    if (!v.is_boolean()) throw TokenizerError(type_error(file, what, "true or false", v));
    return v.get<bool>();
  } else if constexpr (std::is_same_v<T, std::string>) {
    if (!v.is_string()) throw TokenizerError(type_error(file, what, "a string", v));
    return v.get<std::string>();
  } else {
    static_assert(std::is_integral_v<T>);
    bool ok = false;
    if (v.is_number_unsigned()) {
      ok = v.get<unsigned long long>() <=
           static_cast<unsigned long long>(std::numeric_limits<T>::max());
    } else if (v.is_number_integer()) {
      const long long x = v.get<long long>();
      ok = x >= static_cast<long long>(std::numeric_limits<T>::min()) &&
           (x < 0 || static_cast<unsigned long long>(x) <=
                         static_cast<unsigned long long>(std::numeric_limits<T>::max()));
    }
    if (!ok) throw TokenizerError(type_error(file, what, "an integer in range", v));
    return v.get<T>();
  }
}

// obj[key] as T, or `fallback` when the key is absent (or obj is not an object).
template <typename T>
T opt(const json& obj, const char* key, T fallback, const fs::path& file,
      const std::string& where) {
  if (!obj.is_object() || !obj.contains(key)) return fallback;
  return as<T>(obj[key], file, where + "." + key);
}

const json& need(const json& j, const char* key, const fs::path& file, const std::string& where) {
  if (!j.is_object() || !j.contains(key)) {
    throw TokenizerError(file.string() + ": " + where + " has no \"" + key + "\"");
  }
  return j[key];
}

BertOptions normalizer_options(const json& n, const fs::path& file) {
  BertOptions o;
  o.flavor = BertFlavor::kFast;
  if (n.is_null()) {
    o.clean_text = false;
    o.handle_chinese_chars = false;
    o.strip_accents = false;
    return o;
  }
  const std::string type = opt<std::string>(n, "type", "", file, "normalizer");
  if (type != "BertNormalizer") {
    throw TokenizerError(file.string() + ": normalizer type '" + type +
                         "' is not supported (supported: BertNormalizer)");
  }
  o.clean_text = opt(n, "clean_text", true, file, "normalizer");
  o.handle_chinese_chars = opt(n, "handle_chinese_chars", true, file, "normalizer");
  o.lowercase = opt(n, "lowercase", true, file, "normalizer");
  if (n.contains("strip_accents") && n["strip_accents"].is_boolean()) {
    o.strip_accents = n["strip_accents"].get<bool>();
  }
  return o;
}

SpecialToken template_special(const json& special_tokens, const std::string& name,
                              const fs::path& file) {
  if (!special_tokens.is_object() || !special_tokens.contains(name)) {
    throw TokenizerError(file.string() + ": post_processor uses special token '" + name +
                         "' but does not define it in special_tokens");
  }
  const json& s = special_tokens[name];
  if (!s.contains("ids") || !s["ids"].is_array() || s["ids"].size() != 1 || !s.contains("tokens") ||
      !s["tokens"].is_array() || s["tokens"].size() != 1) {
    throw TokenizerError(file.string() + ": post_processor special token '" + name +
                         "' must have exactly one id and one token");
  }
  const std::string where = "post_processor.special_tokens." + name;
  return {as<std::string>(s["tokens"][0], file, where + ".tokens[0]"),
          as<TokenId>(s["ids"][0], file, where + ".ids[0]")};
}

std::vector<TemplatePiece> parse_template(const json& t, const json& special_tokens,
                                          const fs::path& file) {
  std::vector<TemplatePiece> out;
  if (!t.is_array())
    throw TokenizerError(file.string() + ": post_processor template is not a list");
  for (const json& p : t) {
    if (p.contains("SpecialToken")) {
      const json& s = p["SpecialToken"];
      out.push_back(
          special_piece(template_special(special_tokens,
                                         opt<std::string>(s, "id", "", file, "SpecialToken"), file),
                        opt(s, "type_id", 0, file, "SpecialToken")));
    } else if (p.contains("Sequence")) {
      const json& s = p["Sequence"];
      const std::string id = opt<std::string>(s, "id", "A", file, "Sequence");
      if (id != "A" && id != "B") {
        throw TokenizerError(file.string() + ": post_processor sequence id '" + id +
                             "' (expected A or B)");
      }
      out.push_back(sequence_piece(id == "A" ? 0 : 1, opt(s, "type_id", 0, file, "Sequence")));
    } else {
      throw TokenizerError(file.string() + ": post_processor template piece " + p.dump() +
                           " is neither SpecialToken nor Sequence");
    }
  }
  return out;
}

void parse_post_processor(const json& pp, BertTokenizer& tok, const fs::path& file) {
  if (pp.is_null()) {
    // No post-processor: the Rust tokenizer returns the sequences as they are, a pair's second
    // with type id 1, and no special tokens.
    tok.single_template = {sequence_piece(0, 0)};
    tok.pair_template = {sequence_piece(0, 0), sequence_piece(1, 1)};
    return;
  }
  const std::string type = opt<std::string>(pp, "type", "", file, "post_processor");
  if (type == "TemplateProcessing") {
    const json& st = pp.contains("special_tokens") ? pp["special_tokens"] : json::object();
    tok.single_template = parse_template(need(pp, "single", file, "post_processor"), st, file);
    tok.pair_template = parse_template(need(pp, "pair", file, "post_processor"), st, file);
  } else if (type == "BertProcessing") {
    auto special = [&](const char* key) {
      const json& v = need(pp, key, file, "post_processor");
      if (!v.is_array() || v.size() != 2) {
        throw TokenizerError(file.string() + ": post_processor." + key + " must be [token, id]");
      }
      const std::string where = std::string("post_processor.") + key;
      return SpecialToken{as<std::string>(v[0], file, where + "[0]"),
                          as<TokenId>(v[1], file, where + "[1]")};
    };
    SpecialToken cls = special("cls"), sep = special("sep");
    tok.single_template = {special_piece(cls, 0), sequence_piece(0, 0), special_piece(sep, 0)};
    tok.pair_template = {special_piece(cls, 0), sequence_piece(0, 0), special_piece(sep, 0),
                         sequence_piece(1, 1), special_piece(sep, 1)};
  } else {
    throw TokenizerError(file.string() + ": post_processor type '" + type +
                         "' is not supported (supported: TemplateProcessing, BertProcessing)");
  }
}

}  // namespace

std::string tokenizer_json_model_type(const json& j, const fs::path& file) {
  const json& model = need(j, "model", file, "the file");
  if (model.contains("type") && model["type"].is_string()) return model["type"].get<std::string>();
  if (model.contains("continuing_subword_prefix") && model.contains("vocab") &&
      model["vocab"].is_object() && !model.contains("merges")) {
    return "WordPiece";
  }
  if (model.contains("merges")) return "BPE";
  if (model.contains("vocab") && model["vocab"].is_array()) return "Unigram";
  throw TokenizerError(file.string() + ": cannot tell the model type of \"model\"");
}

std::unique_ptr<Tokenizer> load_bert_slow(const fs::path& vocab_txt, const TokenizerConfig& c,
                                          const LoadOptions& options) {
  if (!fs::exists(vocab_txt)) throw FileNotFound(vocab_txt.string() + ": no such vocabulary file");
  if (!fs::is_regular_file(vocab_txt)) {
    throw TokenizerError(vocab_txt.string() + ": the vocabulary is not a file");
  }
  std::vector<std::string> lines = read_vocab_lines(vocab_txt);
  std::string unk = "[UNK]";
  if (auto t = c.special("unk_token")) unk = t->token.content;
  WordPiece model(std::move(lines), unk, "##", 100, vocab_txt.string());

  BertOptions o;
  o.flavor = BertFlavor::kSlow;
  // transformers' BertTokenizer lowercases unless told otherwise.
  o.lowercase = options.do_lower_case.value_or(c.get_bool("do_lower_case", true));
  o.strip_accents = c.get_optional_bool("strip_accents");
  o.handle_chinese_chars = c.get_bool("tokenize_chinese_chars", true);
  o.basic_tokenize = c.get_bool("do_basic_tokenize", true);
  o.never_split = never_split_of(c);
  const bool lower = o.lowercase;
  auto tok = std::make_unique<BertTokenizer>(std::move(model), std::move(o), WordPieceDecoder{});
  tok->info_.family = TokenizerFamily::kBert;
  tok->info_.backend = Backend::kSlow;
  tok->info_.tokenizer_class = "BertTokenizer";
  tok->info_.uses_token_type_ids = true;
  tok->info_.do_lower_case = lower;
  tok->info_.source = vocab_txt;
  finish_bert(*tok, c, vocab_txt.string());
  const SpecialTokens& s = tok->special_;
  tok->single_template = {special_piece(s.cls, 0), sequence_piece(0, 0), special_piece(s.sep, 0)};
  tok->pair_template = {special_piece(s.cls, 0), sequence_piece(0, 0), special_piece(s.sep, 0),
                        sequence_piece(1, 1), special_piece(s.sep, 1)};
  return tok;
}

namespace {

// BertTokenizerFast.__init__ (what AutoTokenizer builds for a BERT folder) rebuilds the
// tokenizer.json normalizer from tokenizer_config.json's do_lower_case (default true),
// strip_accents (default None) and tokenize_chinese_chars (default true) when any of them differs
// from it: the config wins, a missing do_lower_case included (a cased tokenizer.json beside a
// config that omits it lowercases). A null flag there makes transformers fail (BertNormalizer
// takes no None), so it is refused.
void follow_tokenizer_config(BertOptions& o, const TokenizerConfig& c) {
  for (const char* key : {"do_lower_case", "tokenize_chinese_chars"}) {
    if (c.config.contains(key) && c.config[key].is_null()) {
      throw TokenizerError((c.dir / "tokenizer_config.json").string() + ": " + key +
                           " must be true or false with a tokenizer.json, got null");
    }
  }
  const bool lower = c.get_bool("do_lower_case", true);
  const std::optional<bool> strip = c.get_optional_bool("strip_accents");
  const bool chinese = c.get_bool("tokenize_chinese_chars", true);
  if (lower != o.lowercase || strip != o.strip_accents || chinese != o.handle_chinese_chars) {
    o.lowercase = lower;
    o.strip_accents = strip;
    o.handle_chinese_chars = chinese;
  }
}

}  // namespace

std::unique_ptr<Tokenizer> load_bert_fast(const fs::path& file, const json& j,
                                          const TokenizerConfig& c, const LoadOptions& options) {
  const json& model = need(j, "model", file, "the file");
  const json& vocab = need(model, "vocab", file, "model");
  if (!vocab.is_object()) throw TokenizerError(file.string() + ": model.vocab is not an object");
  std::vector<std::string> tokens(vocab.size());
  std::vector<bool> seen(vocab.size(), false);
  for (const auto& [token, v] : vocab.items()) {
    if (!v.is_number_integer() || v.get<long long>() < 0 ||
        v.get<long long>() >= static_cast<long long>(vocab.size())) {
      throw TokenizerError(file.string() + ": model.vocab id of '" + token + "' is " + v.dump() +
                           " (expected an integer in [0, " + std::to_string(vocab.size()) + "))");
    }
    const auto id = v.get<std::size_t>();
    if (seen[id]) {
      throw TokenizerError(file.string() + ": model.vocab gives id " + std::to_string(id) +
                           " to '" + tokens[id] + "' and to '" + token + "'");
    }
    seen[id] = true;
    tokens[id] = token;
  }
  const json& unk = need(model, "unk_token", file, "model");
  if (!unk.is_string()) throw TokenizerError(file.string() + ": model.unk_token is not a string");
  WordPiece wp(std::move(tokens), unk.get<std::string>(),
               opt<std::string>(model, "continuing_subword_prefix", "##", file, "model"),
               opt(model, "max_input_chars_per_word", std::size_t{100}, file, "model"),
               file.string());

  BertOptions o = normalizer_options(j.contains("normalizer") ? j["normalizer"] : json(), file);
  const json pre = j.contains("pre_tokenizer") ? j["pre_tokenizer"] : json();
  const std::string pre_type = opt<std::string>(pre, "type", "", file, "pre_tokenizer");
  if (pre.is_null() || pre_type != "BertPreTokenizer") {
    throw TokenizerError(file.string() + ": pre_tokenizer " +
                         (pre.is_null() ? std::string("null") : "'" + pre_type + "'") +
                         " is not supported (supported: BertPreTokenizer)");
  }
  const bool has_normalizer = j.contains("normalizer") && !j["normalizer"].is_null();
  if (has_normalizer && c.family() == TokenizerFamily::kBert) follow_tokenizer_config(o, c);
  if (options.do_lower_case) o.lowercase = *options.do_lower_case;
  WordPieceDecoder decoder;
  const json dec = j.contains("decoder") ? j["decoder"] : json();
  if (dec.is_null()) {
    decoder.present = false;
  } else if (opt<std::string>(dec, "type", "", file, "decoder") == "WordPiece") {
    decoder.prefix = opt<std::string>(dec, "prefix", "##", file, "decoder");
    decoder.cleanup = opt(dec, "cleanup", true, file, "decoder");
  } else {
    throw TokenizerError(file.string() + ": decoder type '" +
                         opt<std::string>(dec, "type", "", file, "decoder") +
                         "' is not supported (supported: WordPiece)");
  }
  const bool lower = o.lowercase;
  auto tok = std::make_unique<BertTokenizer>(std::move(wp), std::move(o), decoder);
  tok->info_.family = TokenizerFamily::kBert;
  tok->info_.backend = Backend::kFast;
  tok->info_.tokenizer_class = "BertTokenizerFast";
  tok->info_.uses_token_type_ids = true;
  tok->info_.do_lower_case = lower;
  tok->info_.source = file;
  if (j.contains("added_tokens") && j["added_tokens"].is_array()) {
    for (const json& a : j["added_tokens"]) {
      AddedToken t;
      t.content = as<std::string>(need(a, "content", file, "added_tokens entry"), file,
                                  "added_tokens[].content");
      t.id = as<TokenId>(need(a, "id", file, "added_tokens entry"), file, "added_tokens[].id");
      t.special = opt(a, "special", false, file, "added_tokens[]");
      t.lstrip = opt(a, "lstrip", false, file, "added_tokens[]");
      t.rstrip = opt(a, "rstrip", false, file, "added_tokens[]");
      t.single_word = opt(a, "single_word", false, file, "added_tokens[]");
      t.normalized = opt(a, "normalized", false, file, "added_tokens[]");
      tok->added.add(t);
    }
  }
  finish_bert(*tok, c, file.string());
  parse_post_processor(j.contains("post_processor") ? j["post_processor"] : json(), *tok, file);
  return tok;
}

}  // namespace xlt::text
