// Strict TOML reading of study configs with toml++: every table tracks the keys it consumed so
// that anything left over is reported as an unknown key with its line; every value is checked
// for type and range; every local file is checked for existence before the study starts.
#include "xlt/study/config.h"

#include <toml++/toml.h>

#include <algorithm>
#include <cctype>
#include <set>
#include <sstream>

#include "xlt/core/error.h"
#include "xlt/core/file.h"
#include "xlt/core/threads.h"
#include "xlt/data/nli.h"
#include "xlt/data/spec.h"
#include "xlt/io/dataset_download.h"
#include "xlt/io/hub_cache.h"

namespace xlt::study {
namespace fs = std::filesystem;

const std::vector<std::string>& stage_names() {
  static const std::vector<std::string> names(std::begin(kStageNames), std::end(kStageNames));
  return names;
}

bool is_stage_name(std::string_view name) {
  const auto& n = stage_names();
  return std::find(n.begin(), n.end(), name) != n.end();
}

bool is_device_name(std::string_view device) {
  if (device == "cpu" || device == "cuda") return true;
  return device.size() > 5 && device.substr(0, 5) == "cuda:" &&
         std::all_of(device.begin() + 5, device.end(),
                     [](char ch) { return std::isdigit(static_cast<unsigned char>(ch)); });
}

bool StudyConfig::stage_enabled(std::string_view stage) const {
  return std::find(stages.begin(), stages.end(), stage) != stages.end();
}

std::map<std::string, std::vector<std::string>> default_parallel_sentences() {
  return {
      {"en",
       {"The cat is sleeping on the mat.", "This restaurant has amazing food.",
        "Can you help me with this problem?"}},
      {"es",
       {"El gato est\u00e1 durmiendo en la alfombra.",
        "Este restaurante tiene una comida incre\u00edble.",
        "\u00bfPuedes ayudarme con este problema?"}},
      {"fr",
       {"Le chat dort sur le tapis.", "Ce restaurant a une nourriture incroyable.",
        "Peux-tu m'aider avec ce probl\u00e8me ?"}},
      {"hi",
       {"\u092c\u093f\u0932\u094d\u0932\u0940 \u091a\u091f\u093e\u0908 \u092a\u0930 \u0938\u094b "
        "\u0930\u0939\u0940 \u0939\u0948\u0964",
        "\u0907\u0938 \u0930\u0947\u0938\u094d\u091f\u094b\u0930\u0947\u0902\u091f \u0915\u093e "
        "\u0916\u093e\u0928\u093e \u0932\u093e\u091c\u0935\u093e\u092c \u0939\u0948\u0964",
        "\u0915\u094d\u092f\u093e \u0906\u092a \u0907\u0938 \u0938\u092e\u0938\u094d\u092f\u093e "
        "\u092e\u0947\u0902 \u092e\u0947\u0930\u0940 \u092e\u0926\u0926 \u0915\u0930 \u0938\u0915"
        "\u0924\u0947 \u0939\u0948\u0902?"}},
  };
}

namespace {

// fs::exists without the exception: a path the OS cannot even look up (a name over NAME_MAX,
// found by fuzz/study_config_fuzz) is reported as "not found" with the key's line.
bool exists_quietly(const fs::path& p) {
  std::error_code ec;
  return fs::exists(p, ec);
}

// A TOML table being read: remembers which keys were used, so leftovers are unknown keys.
class Section {
 public:
  Section(const toml::table* table, std::string prefix, const fs::path& file,
          std::map<std::string, int>* lines = nullptr)
      : table_(table), prefix_(std::move(prefix)), file_(file), lines_(lines) {}

  bool present() const { return table_ != nullptr; }
  int line() const { return table_ ? static_cast<int>(table_->source().begin.line) : 0; }

  const toml::node* get(const std::string& key) {
    used_.insert(key);
    const toml::node* n = table_ ? table_->get(key) : nullptr;
    if (n && lines_ && n->source().begin.line > 0) {
      (*lines_)[name(key)] = static_cast<int>(n->source().begin.line);
    }
    return n;
  }

  [[noreturn]] void fail(const toml::node* node, const std::string& key,
                         const std::string& what) const {
    std::string where = file_.string();
    if (node && node->source().begin.line > 0) {
      where += ":" + std::to_string(node->source().begin.line);
    }
    throw ConfigError(where + ": " + name(key) + ": " + what);
  }

  std::string name(const std::string& key) const {
    return prefix_.empty() ? key : prefix_ + "." + key;
  }

  std::string str(const std::string& key, std::string def) {
    const toml::node* n = get(key);
    if (!n) return def;
    if (!n->is_string()) fail(n, key, "expected a string, found " + type_of(*n));
    return std::string(*n->value<std::string_view>());
  }

  bool boolean(const std::string& key, bool def) {
    const toml::node* n = get(key);
    if (!n) return def;
    if (!n->is_boolean()) fail(n, key, "expected true or false, found " + type_of(*n));
    return *n->value<bool>();
  }

  int64_t integer(const std::string& key, int64_t def, int64_t lo, int64_t hi) {
    const toml::node* n = get(key);
    if (!n) return def;
    if (!n->is_integer()) fail(n, key, "expected an integer, found " + type_of(*n));
    const int64_t v = *n->value<int64_t>();
    if (v < lo || v > hi)
      fail(n, key,
           "expected an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) +
               "], found " + std::to_string(v));
    return v;
  }

  double number(const std::string& key, double def, double lo, double hi, bool lo_open = false) {
    const toml::node* n = get(key);
    if (!n) return def;
    if (!n->is_number()) fail(n, key, "expected a number, found " + type_of(*n));
    const double v =
        n->is_integer() ? static_cast<double>(*n->value<int64_t>()) : *n->value<double>();
    if (!(lo_open ? v > lo : v >= lo) || !(v <= hi)) {
      std::ostringstream os;
      os << "expected a number in " << (lo_open ? "(" : "[") << lo << ", " << hi << "], found "
         << v;
      fail(n, key, os.str());
    }
    return v;
  }

  std::vector<std::string> strings(const std::string& key, std::vector<std::string> def) {
    const toml::node* n = get(key);
    if (!n) return def;
    const toml::array* a = n->as_array();
    if (!a) fail(n, key, "expected an array of strings, found " + type_of(*n));
    std::vector<std::string> out;
    for (const auto& item : *a) {
      if (!item.is_string()) fail(&item, key, "expected strings, found " + type_of(item));
      out.emplace_back(*item.value<std::string_view>());
    }
    return out;
  }

  const toml::table* table(const std::string& key) {
    const toml::node* n = get(key);
    if (!n) return nullptr;
    if (!n->is_table()) fail(n, key, "expected a table, found " + type_of(*n));
    return n->as_table();
  }

  // Throws for the first key that was never asked for.
  void finish(const std::vector<std::string>& known) const {
    reject_if([&](const std::string& key) { return used_.count(key) == 0; }, known);
  }

  // Throws for the first key not in `known`, before anything is read (a misspelt table would
  // otherwise first show as its defaults failing).
  void only(const std::vector<std::string>& known) const {
    reject_if(
        [&](const std::string& key) {
          return std::find(known.begin(), known.end(), key) == known.end();
        },
        known);
  }

  template <typename Unknown>
  void reject_if(Unknown unknown, const std::vector<std::string>& known) const {
    if (!table_) return;
    for (const auto& [k, v] : *table_) {
      const std::string key(k.str());
      if (!unknown(key)) continue;
      std::string list;
      for (const auto& kn : known) list += (list.empty() ? "" : ", ") + kn;
      std::string where = file_.string();
      if (k.source().begin.line > 0) where += ":" + std::to_string(k.source().begin.line);
      const std::string what =
          v.is_table() ? "unknown table [" + name(key) + "]" : "unknown key '" + name(key) + "'";
      throw ConfigError(where + ": " + what +
                        (list.empty() ? "" : " (known keys here: " + list + ")"));
    }
  }

  static std::string type_of(const toml::node& n) {
    switch (n.type()) {
      case toml::node_type::string:
        return "a string";
      case toml::node_type::integer:
        return "an integer";
      case toml::node_type::floating_point:
        return "a float";
      case toml::node_type::boolean:
        return "a boolean";
      case toml::node_type::array:
        return "an array";
      case toml::node_type::table:
        return "a table";
      default:
        return "a date/time";
    }
  }

 private:
  const toml::table* table_;
  std::string prefix_;
  fs::path file_;
  std::map<std::string, int>* lines_;  // key -> line, for checks made after reading
  std::set<std::string> used_;
};

class Parser {
  inline static const std::vector<std::string> kTables = {
      "study", "encoder",  "encoders",  "causal_lm",  "train",
      "eval",  "analysis", "attention", "perplexity", "distance"};

 public:
  Parser(const toml::table& root, const fs::path& file) : root_(&root, "", file), file_(file) {
    c_.config_file = file;
    c_.base_dir = file.parent_path();
  }

  StudyConfig parse() {
    root_.only(kTables);
    study();
    encoders();
    model("causal_lm", c_.causal_lm, "facebook/xglm-564M");
    train();
    perplexity();  // before eval: eval data are needed when perplexity has no texts of its own
    eval();
    analysis();
    attention();
    distance();
    root_.finish(kTables);
    return std::move(c_);
  }

 private:
  Section section(const std::string& name) {
    return Section(root_.table(name), name, file_, &c_.key_lines);
  }

  // A path as the config names it: relative ones against the config's folder.
  fs::path resolved(const std::string& value) const {
    const fs::path p(value);
    return (p.is_relative() ? c_.base_dir / p : p).lexically_normal();
  }

  // A path relative to the config's folder; must exist.
  // A file (a folder only where `folder_ok`: a tokenizer), checked now so that a study does not
  // fail on it after hours of fine-tuning. "" resolved to the config's folder and passed.
  fs::path existing_path(Section& s, const std::string& key, const std::string& value,
                         bool folder_ok = false) {
    if (value.empty()) s.fail(s.get(key), key, "an empty path");
    const fs::path p = resolved(value);
    if (!exists_quietly(p)) {
      s.fail(s.get(key), key,
             "file not found: " + p.string() +
                 " (relative paths resolve "
                 "against the config file's folder)");
    }
    std::error_code ec;
    if (!folder_ok && fs::is_directory(p, ec)) {
      s.fail(s.get(key), key, p.string() + " is a folder, expected a file");
    }
    return p;
  }

  // A data spec: "xnli:..."/"multinli:..." stays a spec (checked against the data cache), else
  // a file path that must exist.
  std::string data_spec(Section& s, const std::string& key, const std::string& value) {
    if (io::is_dataset_spec(value)) {
      try {
        io::resolve_dataset_spec(value);
      } catch (const Error& e) {
        s.fail(s.get(key), key, e.what());
      }
      return value;
    }
    return existing_path(s, key, value).string();
  }

  std::string sampling(Section& s, const std::string& fallback) {
    const std::string v = s.str("sampling", fallback);
    try {
      data::parse_sampling(v);
    } catch (const Error& e) {
      s.fail(s.get("sampling"), "sampling", e.what());
    }
    return v;
  }

  void format(Section& s, const std::string& key, const std::string& value) {
    try {
      data::parse_nli_format(value);
    } catch (const Error& e) {
      s.fail(s.get(key), key, e.what());
    }
  }

  void study() {
    Section s = section("study");
    static const std::vector<std::string> kKeys = {
        "title", "languages", "source_language", "seeds", "stages", "device", "threads", "out"};
    s.only(kKeys);  // a misspelt key first, before a default of it fails a check
    c_.title = s.str("title", c_.config_file.stem().string());
    c_.languages = s.strings("languages", c_.languages);
    if (c_.languages.empty())
      s.fail(s.get("languages"), "languages", "needs at least one language");
    std::set<std::string> seen;
    for (const auto& l : c_.languages) {
      if (!data::is_language_code(l))
        s.fail(s.get("languages"), "languages", "'" + l + "' is not a language code");
      if (!seen.insert(l).second)
        s.fail(s.get("languages"), "languages", "'" + l + "' is listed twice");
    }
    c_.source_lang = s.str("source_language", c_.source_lang);
    if (!seen.count(c_.source_lang)) {
      s.fail(s.get("source_language"), "source_language",
             "'" + c_.source_lang + "' must be one of the study languages");
    }
    if (const toml::node* n = s.get("seeds")) {
      const toml::array* a = n->as_array();
      if (!a || a->empty()) s.fail(n, "seeds", "expected a non-empty array of integers");
      c_.seeds.clear();
      std::set<uint64_t> uniq;
      for (const auto& item : *a) {
        if (!item.is_integer() || *item.value<int64_t>() < 0) {
          s.fail(&item, "seeds", "expected non-negative integers");
        }
        const auto seed = static_cast<uint64_t>(*item.value<int64_t>());
        if (!uniq.insert(seed).second)
          s.fail(&item, "seeds", "seed " + std::to_string(seed) + " is listed twice");
        c_.seeds.push_back(seed);
      }
    }
    const auto stages = s.strings("stages", stage_names());
    if (stages.empty()) {
      s.fail(s.get("stages"), "stages",
             "is empty: name the stages to run, or leave `stages` out for all of them");
    }
    for (const auto& st : stages) {
      if (!is_stage_name(st)) {
        std::string known;
        for (const auto& n : stage_names()) known += (known.empty() ? "" : ", ") + n;
        s.fail(s.get("stages"), "stages", "unknown stage '" + st + "' (stages: " + known + ")");
      }
    }
    for (const auto& n : stage_names()) {
      if (std::find(stages.begin(), stages.end(), n) != stages.end()) c_.stages.push_back(n);
    }
    c_.device = s.str("device", c_.device);
    if (!is_device_name(c_.device)) {
      s.fail(s.get("device"), "device", "expected cpu, cuda or cuda:N, found '" + c_.device + "'");
    }
    c_.threads = static_cast<int>(s.integer("threads", 0, 0, kMaxThreads));
    const std::string out = s.str("out", "");
    if (!out.empty()) c_.out = fs::path(out).is_relative() ? c_.base_dir / out : fs::path(out);
    s.finish(kKeys);
  }

  // `[encoder]` (one unnamed encoder) or `[encoders.NAME]` tables (several), not both.
  void encoders() {
    const toml::table* many = root_.table("encoders");
    if (!many) {
      model("encoder", c_.encoder, "bert-base-multilingual-cased");
      c_.encoders = {{"", c_.encoder}};
      return;
    }
    if (root_.table("encoder")) {
      root_.fail(root_.get("encoder"), "encoder",
                 "give either [encoder] or [encoders.NAME] tables, not both");
    }
    Section all(many, "encoders", file_);
    if (many->empty()) all.fail(root_.get("encoders"), "encoders", "needs at least one encoder");
    std::vector<std::string> names;
    for (const auto& [k, v] : *many) {
      const std::string name(k.str());
      all.get(name);
      const bool ok = !name.empty() && name.size() <= 64 &&
                      std::all_of(name.begin(), name.end(),
                                  [](char ch) {
                                    return std::isalnum(static_cast<unsigned char>(ch)) ||
                                           ch == '_' || ch == '-' || ch == '.';
                                  }) &&
                      name.front() != '.' && name.front() != '-';
      if (!ok) {
        all.fail(&v, name,
                 "encoder names are 1-64 letters, digits, '_', '-' or '.', starting with a "
                 "letter, digit or '_' (they name folders)");
      }
      if (!v.is_table()) all.fail(&v, name, "expected a table, found " + Section::type_of(v));
      ModelSpec m;
      model_in(Section(v.as_table(), "encoders." + name, file_, &c_.key_lines), "encoder", m,
               "bert-base-multilingual-cased");
      c_.encoders.push_back({name, m});
      names.push_back(name);
    }
    all.finish(names);
    c_.encoder = c_.encoders.front().spec;
  }

  void model(const std::string& name, ModelSpec& m, const std::string& default_model) {
    model_in(section(name), name, m, default_model);
  }

  void model_in(Section s, const std::string& name, ModelSpec& m,
                const std::string& default_model) {
    static const std::vector<std::string> kKeys = {"enabled", "model", "init", "tokenizer",
                                                   "init_seed"};
    s.only(kKeys);  // a misspelt key first, before a default of it fails a check
    m.line = s.line();
    m.enabled = s.boolean("enabled", true);
    if (name == "encoder" && !m.enabled) {
      s.fail(s.get("enabled"), "enabled", "the encoder cannot be disabled");
    }
    const std::string init = s.str("init", "");
    const std::string tokenizer = s.str("tokenizer", "");
    m.init_seed = static_cast<uint64_t>(s.integer("init_seed", 42, 0, INT64_MAX));
    std::string model = s.str("model", init.empty() ? default_model : "");
    if (m.enabled) {
      if (!init.empty()) {
        m.init = existing_path(s, "init", init);
        if (tokenizer.empty()) {
          s.fail(s.get("init"), "init", "a randomly initialised model needs `tokenizer` too");
        }
        if (model.empty()) model = "random " + m.init.filename().string();
      } else {
        fs::path p(model);
        const fs::path local = p.is_relative() ? c_.base_dir / p : p;
        const bool looks_local = model.rfind("./", 0) == 0 || model.rfind("../", 0) == 0 ||
                                 p.is_absolute() || exists_quietly(local);
        if (looks_local) {
          if (!exists_quietly(local))
            s.fail(s.get("model"), "model", "not found: " + local.string());
          model = local.lexically_normal().string();
          m.model_is_path = true;
        } else {
          try {
            io::RepoRef::parse(model);
          } catch (const Error& e) {
            s.fail(
                s.get("model"), "model",
                "neither an existing path nor a Hugging Face model id: " + std::string(e.what()));
          }
        }
      }
      if (!tokenizer.empty()) {
        m.tokenizer = existing_path(s, "tokenizer", tokenizer, /*folder_ok=*/true);
      }
    }
    m.model = model;
    s.finish(kKeys);
  }

  void train() {
    Section s = section("train");
    static const std::vector<std::string> kKeys = {
        "data",         "dev",           "format",        "samples",    "sample_seed", "sampling",
        "epochs",       "learning_rate", "batch_size",    "max_tokens", "grad_accum",  "max_length",
        "warmup_ratio", "weight_decay",  "max_grad_norm", "save_every", "bf16"};
    s.only(kKeys);  // a misspelt key first, before a default of it fails a check
    auto& t = c_.train;
    t.data = s.str("data", t.data);
    t.dev = s.str("dev", "");
    t.format = s.str("format", t.format);
    format(s, "format", t.format);
    t.samples = s.integer("samples", t.samples, 0, INT64_MAX);
    if (s.get("sample_seed")) {
      t.sample_seed = static_cast<uint64_t>(s.integer("sample_seed", 0, 0, INT64_MAX));
    }
    t.sampling = sampling(s, t.sampling);
    t.epochs = s.integer("epochs", t.epochs, 1, 1000);
    t.learning_rate = s.number("learning_rate", t.learning_rate, 0.0, 1.0, true);
    t.batch_size = s.integer("batch_size", t.batch_size, 1, 65536);
    t.max_tokens = s.integer("max_tokens", t.max_tokens, 0, INT64_MAX);
    t.grad_accum = s.integer("grad_accum", t.grad_accum, 1, 65536);
    t.max_length = s.integer("max_length", t.max_length, 8, 8192);
    t.warmup_ratio = s.number("warmup_ratio", t.warmup_ratio, 0.0, 1.0);
    t.weight_decay = s.number("weight_decay", t.weight_decay, 0.0, 1.0);
    t.max_grad_norm = s.number("max_grad_norm", t.max_grad_norm, 0.0, 1e9);
    t.save_every = s.integer("save_every", t.save_every, 0, INT64_MAX);
    t.bf16 = s.boolean("bf16", t.bf16);
    if (c_.stage_enabled("finetune")) {
      t.data = data_spec(s, "data", t.data);
      if (!t.dev.empty()) t.dev = data_spec(s, "dev", t.dev);
    }
    s.finish(kKeys);
  }

  void eval() {
    Section s = section("eval");
    static const std::vector<std::string> kKeys = {
        "data",     "files",      "format",     "samples",    "sample_seed",
        "sampling", "batch_size", "max_tokens", "max_length", "bootstrap_resamples"};
    s.only(kKeys);  // a misspelt key first, before a default of it fails a check
    auto& e = c_.eval;
    const bool has_files = s.present() && s.table("files") != nullptr;
    e.data = s.str("data", has_files ? "" : e.data);
    e.format = s.str("format", e.format);
    format(s, "format", e.format);
    e.samples = s.integer("samples", e.samples, 0, INT64_MAX);
    e.sample_seed = static_cast<uint64_t>(s.integer("sample_seed", 42, 0, INT64_MAX));
    e.sampling = sampling(s, e.sampling);
    e.batch_size = s.integer("batch_size", e.batch_size, 1, 65536);
    e.max_tokens = s.integer("max_tokens", e.max_tokens, 0, INT64_MAX);
    e.max_length = s.integer("max_length", e.max_length, 8, 8192);
    e.bootstrap_resamples = static_cast<int>(s.integer("bootstrap_resamples", 1000, 10, 1000000));
    const bool needed = c_.stage_enabled("baseline") || c_.stage_enabled("zero_shot") ||
                        (c_.stage_enabled("perplexity") && c_.perplexity.texts.empty());
    if (has_files && !e.data.empty()) {
      s.fail(s.get("data"), "data", "give either eval.data or eval.files, not both");
    }
    if (has_files) {
      Section f(s.table("files"), "eval.files", file_);
      for (const auto& lang : c_.languages) {
        const std::string v = f.str(lang, "");
        if (v.empty()) {
          s.fail(s.get("files"), "files", "no file for study language '" + lang + "'");
        }
        // Unneeded files may be missing, but they resolve like every path here: the analysis
        // reads them when they exist, and a name relative to the working folder would not be
        // the file the config names.
        e.files[lang] = (needed ? existing_path(f, lang, v) : resolved(v)).string();
      }
      f.finish(c_.languages);
    } else if (needed) {
      e.data = data_spec(s, "data", e.data);
    }
    s.finish(kKeys);
  }

  void analysis() {
    Section s = section("analysis");
    static const std::vector<std::string> kKeys = {
        "sentences",       "parallel_file",   "max_parallel", "pooling",   "layer",
        "tsne_perplexity", "tsne_iterations", "tsne_seed",    "batch_size"};
    s.only(kKeys);  // a misspelt key first, before a default of it fails a check
    auto& a = c_.analysis;
    if (const toml::table* t = s.table("sentences")) {
      Section st(t, "analysis.sentences", file_);
      size_t rows = 0;
      for (const auto& [k, v] : *t) {
        const std::string lang(k.str());
        a.sentences[lang] = st.strings(lang, {});
        if (a.sentences[lang].empty() || (rows && a.sentences[lang].size() != rows)) {
          st.fail(&v, lang,
                  "expected " + (rows ? std::to_string(rows) : std::string("some")) +
                      " sentences (row i is parallel across languages)");
        }
        rows = a.sentences[lang].size();
      }
    } else {
      a.sentences = default_parallel_sentences();
    }
    const std::string parallel = s.str("parallel_file", "");
    if (!parallel.empty()) a.parallel_file = existing_path(s, "parallel_file", parallel);
    a.max_parallel = s.integer("max_parallel", a.max_parallel, 2, INT64_MAX);
    a.pooling = s.str("pooling", a.pooling);
    if (a.pooling != "mean" && a.pooling != "cls") {
      s.fail(s.get("pooling"), "pooling",
             "expected \"mean\" or \"cls\", found \"" + a.pooling + "\"");
    }
    a.layer = static_cast<int>(s.integer("layer", a.layer, -1, 1000));
    a.tsne_perplexity = s.number("tsne_perplexity", a.tsne_perplexity, 0.0, 1e6, true);
    a.tsne_iterations =
        static_cast<int>(s.integer("tsne_iterations", a.tsne_iterations, 250, 1000000));
    if (s.get("tsne_seed")) {
      a.tsne_seed = static_cast<uint64_t>(s.integer("tsne_seed", 0, 0, INT64_MAX));
    }
    a.batch_size = s.integer("batch_size", a.batch_size, 1, 65536);
    if (c_.stage_enabled("analysis")) {
      int covered = 0;
      for (const auto& l : c_.languages) covered += a.sentences.count(l) ? 1 : 0;
      if (covered < 1) {
        s.fail(s.get("sentences"), "sentences", "no sentences for any study language");
      }
    }
    s.finish(kKeys);
  }

  void attention() {
    Section s = section("attention");
    static const std::vector<std::string> kKeys = {"sentences", "languages", "layer", "model"};
    s.only(kKeys);  // a misspelt key first, before a default of it fails a check
    auto& a = c_.attention;
    a.sentences = s.strings("sentences", a.sentences);
    a.languages = s.strings("languages", a.languages);
    if (a.sentences.empty() || a.sentences.size() != a.languages.size()) {
      s.fail(
          s.get("languages"), "languages",
          "needs one language per sentence (" + std::to_string(a.sentences.size()) + " sentences)");
    }
    a.layer = static_cast<int>(s.integer("layer", a.layer, 1, 1000));
    a.model = s.str("model", a.model);
    if (a.model != "causal_lm" && a.model != "encoder") {
      s.fail(s.get("model"), "model",
             "expected \"causal_lm\" or \"encoder\", found \"" + a.model + "\"");
    }
    if (c_.stage_enabled("attention") && a.model == "causal_lm" && !c_.causal_lm.enabled) {
      s.fail(s.get("model"), "model",
             "\"causal_lm\" but [causal_lm] enabled = false (use model = \"encoder\" or drop the "
             "attention stage)");
    }
    s.finish(kKeys);
  }

  void perplexity() {
    Section s = section("perplexity");
    static const std::vector<std::string> kKeys = {"texts", "max_lines", "max_length", "stride",
                                                   "batch_size"};
    s.only(kKeys);  // a misspelt key first, before a default of it fails a check
    auto& p = c_.perplexity;
    if (const toml::table* t = s.table("texts")) {
      Section st(t, "perplexity.texts", file_);
      for (const auto& [k, v] : *t) {
        const std::string lang(k.str());
        p.texts[lang] = existing_path(st, lang, st.str(lang, ""));
      }
    }
    p.max_lines = s.integer("max_lines", p.max_lines, 1, INT64_MAX);
    p.max_length = s.integer("max_length", p.max_length, 2, 1 << 20);
    p.stride = s.integer("stride", p.stride, 0, 1 << 20);
    p.batch_size = s.integer("batch_size", p.batch_size, 1, 65536);
    if (p.stride > p.max_length) s.fail(s.get("stride"), "stride", "must not exceed max_length");
    if (c_.stage_enabled("perplexity") && !c_.causal_lm.enabled) {
      throw ConfigError(file_.string() +
                        ": stages include \"perplexity\" but [causal_lm] "
                        "enabled = false (drop the stage or enable the model)");
    }
    s.finish(kKeys);
  }

  void distance() {
    Section s = section("distance");
    static const std::vector<std::string> kKeys = {"measure", "file"};
    s.only(kKeys);  // a misspelt key first, before a default of it fails a check
    c_.distance.measure = s.str("measure", c_.distance.measure);
    const std::string file = s.str("file", "");
    if (!file.empty()) c_.distance.file = existing_path(s, "file", file);
    if (file.empty() && c_.distance.measure != "syntactic" && c_.distance.measure != "genetic" &&
        c_.distance.measure != "geographic") {
      s.fail(s.get("measure"), "measure",
             "the built-in table has \"syntactic\", \"genetic\" and \"geographic\"; found \"" +
                 c_.distance.measure + "\"");
    }
    s.finish(kKeys);
  }

  Section root_;
  fs::path file_;
  StudyConfig c_;
};

}  // namespace

std::string StudyConfig::where(const std::string& key) const {
  std::string k = key;
  // A randomly initialised model has no `model` key: its `init` line names it.
  const std::string suffix = ".model";
  if (!key_lines.count(k) && k.size() > suffix.size() &&
      k.compare(k.size() - suffix.size(), suffix.size(), suffix) == 0) {
    const std::string init = k.substr(0, k.size() - suffix.size()) + ".init";
    if (key_lines.count(init)) k = init;
  }
  const auto it = key_lines.find(k);
  return config_file.string() + (it == key_lines.end() ? "" : ":" + std::to_string(it->second)) +
         ": " + k;
}

nlohmann::json StudyConfig::to_json() const {
  auto model_json = [](const ModelSpec& m) {
    return nlohmann::json{
        {"enabled", m.enabled},     {"model", m.model},
        {"init", m.init.string()},  {"tokenizer", m.tokenizer.string()},
        {"init_seed", m.init_seed}, {"randomly_initialized", m.randomly_initialized()}};
  };
  nlohmann::json texts = nlohmann::json::object();
  for (const auto& [lang, p] : perplexity.texts) texts[lang] = p.string();
  // Several encoders: by name ("encoder" is then the first); one encoder: null.
  nlohmann::json encoders_json = nullptr;
  if (multi_encoder()) {
    encoders_json = nlohmann::json::object();
    for (const auto& e : encoders) encoders_json[e.name] = model_json(e.spec);
  }
  nlohmann::json result = {
      {"config_file", config_file.string()},
      {"study",
       {{"title", title},
        {"languages", languages},
        {"source_language", source_lang},
        {"seeds", seeds},
        {"stages", stages},
        {"device", device},
        {"threads", threads},
        {"out", out.string()}}},
      {"encoder", model_json(encoder)},
      {"encoders", encoders_json},
      {"causal_lm", model_json(causal_lm)},
      {"train",
       {{"data", train.data},
        {"dev", train.dev},
        {"format", train.format},
        {"samples", train.samples},
        {"sample_seed",
         train.sample_seed ? nlohmann::json(*train.sample_seed) : nlohmann::json(nullptr)},
        {"sampling", train.sampling},
        {"epochs", train.epochs},
        {"learning_rate", train.learning_rate},
        {"batch_size", train.batch_size},
        {"max_tokens", train.max_tokens},
        {"grad_accum", train.grad_accum},
        {"max_length", train.max_length},
        {"warmup_ratio", train.warmup_ratio},
        {"weight_decay", train.weight_decay},
        {"max_grad_norm", train.max_grad_norm},
        {"save_every", train.save_every},
        {"bf16", train.bf16}}},
      {"eval",
       {{"data", eval.data},
        {"files", eval.files},
        {"format", eval.format},
        {"samples", eval.samples},
        {"sample_seed", eval.sample_seed},
        {"sampling", eval.sampling},
        {"batch_size", eval.batch_size},
        {"max_tokens", eval.max_tokens},
        {"max_length", eval.max_length},
        {"bootstrap_resamples", eval.bootstrap_resamples}}},
      {"analysis",
       {{"sentences", analysis.sentences},
        {"parallel_file", analysis.parallel_file.string()},
        {"max_parallel", analysis.max_parallel},
        {"pooling", analysis.pooling},
        {"layer", analysis.layer},
        {"tsne_perplexity", analysis.tsne_perplexity},
        {"tsne_iterations", analysis.tsne_iterations},
        {"tsne_seed",
         analysis.tsne_seed ? nlohmann::json(*analysis.tsne_seed) : nlohmann::json(nullptr)},
        {"batch_size", analysis.batch_size}}},
      {"attention",
       {{"sentences", attention.sentences},
        {"languages", attention.languages},
        {"layer", attention.layer},
        {"model", attention.model}}},
      {"perplexity",
       {{"texts", texts},
        {"max_lines", perplexity.max_lines},
        {"max_length", perplexity.max_length},
        {"stride", perplexity.stride},
        {"batch_size", perplexity.batch_size}}},
      {"distance", {{"measure", distance.measure}, {"file", distance.file.string()}}},
  };
  if (!multi_encoder()) result.erase("encoders");  // the one-encoder layout stays as it was
  return result;
}

StudyConfig parse_study_config(std::string_view toml_text, const fs::path& path) {
  const fs::path file = fs::absolute(path).lexically_normal();
  toml::table root;
  try {
    root = toml::parse(toml_text, file.string());
  } catch (const toml::parse_error& e) {
    throw ConfigError(file.string() + ":" + std::to_string(e.source().begin.line) + ":" +
                      std::to_string(e.source().begin.column) +
                      ": invalid TOML: " + std::string(e.description()));
  }
  return Parser(root, file).parse();
}

StudyConfig load_study_config(const fs::path& path) {
  if (!fs::exists(path)) throw FileNotFound(path.string() + ": config file not found");
  return parse_study_config(read_file(path), path);
}

}  // namespace xlt::study
