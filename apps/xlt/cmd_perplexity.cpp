// `xlt perplexity MODEL --text FILE[,FILE...] [--langs ...]`: per-language perplexity of a causal
// LM (XGLM) with Hugging Face's sliding-window method, plus bits per byte / per character, which
// compare across languages whose texts segment into different numbers of tokens.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "command.h"
#include "xlt/core/error.h"
#include "xlt/core/file.h"
#include "xlt/data/spec.h"
#include "xlt/eval/perplexity.h"
#include "xlt/io/hub_cache.h"
#include "xlt/models/model.h"
#include "xlt/text/tokenizer.h"
#include "xlt/version.h"

namespace xlt::cli {
namespace {
namespace fs = std::filesystem;

struct PerplexityCliOptions {
  std::string model;
  std::vector<std::string> text;
  std::vector<std::string> langs;
  int64_t max_length = 0;
  int64_t stride = 0;
  int64_t batch_size = 8;
  std::string join = "stream";
  std::string dtype = "float32";
  std::string out;
  bool no_progress = false;
  RuntimeOptions runtime;
};

// --text items (comma lists allowed): LANG=PATH, or PATHs named by --langs in order, else by the
// file's stem.
std::vector<data::DataSpec> assign_languages(const PerplexityCliOptions& o) {
  std::vector<data::DataSpec> specs;
  for (const auto& value : o.text) {
    std::stringstream ss(value);
    std::string item;
    while (std::getline(ss, item, ',')) specs.push_back(data::parse_data_spec(item, "--text"));
  }
  if (specs.empty()) throw UsageError("--text: no files given");
  std::vector<std::string> langs;
  if (!o.langs.empty()) langs = data::parse_lang_list(o.langs);
  size_t bare = 0;
  for (const auto& s : specs) bare += s.lang.empty();
  if (bare > 0 && !langs.empty()) {
    if (bare != specs.size() || langs.size() != specs.size()) {
      throw UsageError("--text has " + std::to_string(specs.size()) + " files and --langs " +
                       std::to_string(langs.size()) +
                       " languages: give one language per file, or use LANG=PATH");
    }
    for (size_t i = 0; i < specs.size(); ++i) specs[i].lang = langs[i];
    return specs;
  }
  for (auto& s : specs)
    if (s.lang.empty()) s.lang = fs::path(s.path).stem().string();
  if (langs.empty()) return specs;
  std::vector<data::DataSpec> chosen;  // --langs selects and orders LANG=PATH items
  for (const auto& l : langs) {
    bool found = false;
    for (const auto& s : specs) {
      if (s.lang == l) {
        chosen.push_back(s);
        found = true;
      }
    }
    if (!found) throw UsageError("--langs " + l + ": no --text " + l + "=PATH given");
  }
  return chosen;
}

// One entry per language: perplexity.json is keyed by language, so a second file of a language
// (two en=..., or two bare files with the same stem) would silently replace the first.
std::vector<data::DataSpec> text_specs(const PerplexityCliOptions& o) {
  auto specs = assign_languages(o);
  for (size_t i = 0; i < specs.size(); ++i) {
    for (size_t k = 0; k < i; ++k) {
      if (specs[k].lang == specs[i].lang) {
        throw UsageError("--text: language '" + specs[i].lang + "' given twice (" + specs[k].path +
                         " and " + specs[i].path + "); use LANG=PATH with distinct languages");
      }
    }
  }
  return specs;
}

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

int run(const PerplexityCliOptions& o) {
  const int threads = apply_runtime_options(o.runtime);
  // --out is made ready before any work, and a run that fails leaves no empty folder behind.
  CreatedFolders out_folders(o.out.empty() ? std::vector<fs::path>{}
                                           : prepare_output_folder(o.out, "--out"));
  const auto specs = text_specs(o);
  eval::PerplexityOptions po;
  po.max_length = o.max_length;
  po.stride = o.stride;
  po.batch_size = o.batch_size;
  po.join = eval::parse_join_mode(o.join);
  po.progress = !o.no_progress;
  // Every text is read (and its UTF-8 checked) before the model loads, so a bad last file fails
  // at once instead of after the other languages were scored.
  std::vector<std::vector<std::string>> texts;
  for (const auto& spec : specs) texts.push_back(eval::read_text_lines(spec.path));

  const io::ModelLocation loc = io::resolve_model_location(o.model);
  models::LoadOptions lo;
  lo.device = models::parse_device(o.runtime.device);
  lo.dtype = models::parse_dtype(o.dtype);
  auto model = models::load_model(loc.path, lo);
  std::cerr << "xlt perplexity: " << model->load_report().summary() << "\n";
  const fs::path dir = fs::is_directory(loc.path) ? loc.path : loc.path.parent_path();
  auto tokenizer = text::load_tokenizer(dir);
  models::check_tokenizer_fits(tokenizer->vocab_size(), *model, dir);
  const int64_t L = po.max_length > 0 ? po.max_length : model->config().max_position_embeddings;
  const int64_t S = po.stride > 0 ? po.stride : std::max<int64_t>(1, L / 2);

  nlohmann::json langs = nlohmann::json::object();
  std::vector<eval::PerplexityResult> results;
  for (std::size_t i = 0; i < specs.size(); ++i) {
    const auto& spec = specs[i];
    po.progress_label = "perplexity " + spec.lang;
    eval::PerplexityResult r;
    try {
      r = eval::text_perplexity(*model, *tokenizer, texts[i], po);
    } catch (const DataError& e) {
      throw DataError(spec.path + ": " + e.what());
    }
    r.lang = spec.lang;
    r.source = spec.path;
    std::cerr << "xlt perplexity: " << spec.lang << ": " << r.windows << " windows, "
              << r.scored_tokens << " tokens scored in " << fmt("%.2f", r.seconds) << " s\n";
    if (std::isnan(r.bits_per_byte)) {
      std::cerr << "xlt perplexity: " << spec.lang
                << ": --stride = --max-length leaves the first token of each later window "
                   "unscored, so bits per byte and per character (of the whole text) are not "
                   "given; a smaller --stride scores every token\n";
    }
    langs[spec.lang] = r.to_json();
    results.push_back(r);
  }

  if (!o.out.empty()) {
    nlohmann::json j;
    j["languages"] = langs;
    j["xlt_version"] = XLT_VERSION;
    j["model"] = {{"path", loc.path.string()}, {"type", io::model_type_name(model->type())}};
    j["config"] = {{"model", o.model}, {"text", o.text},
                   {"langs", o.langs}, {"max_length", L},
                   {"stride", S},      {"batch_size", o.batch_size},
                   {"join", o.join},   {"device", o.runtime.device},
                   {"dtype", o.dtype}, {"threads", threads}};
    j["method"] =
        "sliding windows of max_length tokens every stride tokens; each token after the first "
        "scored once, except each later window's first when stride = max_length (HF "
        "'perplexity of fixed-length models'); bits = nll / ln 2, per byte and character of the "
        "whole text, null when tokens went unscored";
    write_file_atomic(fs::path(o.out) / "perplexity.json", j.dump(2) + "\n");
    std::cerr << "xlt perplexity: wrote " << o.out << "/perplexity.json\n";
  }
  std::printf("%-8s %8s %10s %10s %12s %10s %10s\n", "lang", "lines", "tokens", "scored",
              "perplexity", "bits/byte", "bits/char");
  for (const auto& r : results) {
    std::printf("%-8s %8lld %10lld %10lld %12.4f %10.4f %10.4f\n", r.lang.c_str(),
                static_cast<long long>(r.lines), static_cast<long long>(r.tokens),
                static_cast<long long>(r.scored_tokens), r.perplexity, r.bits_per_byte,
                r.bits_per_char);
  }
  return 0;
}

Runner configure(CLI::App& sub) {
  auto o = std::make_shared<PerplexityCliOptions>();
  sub.add_option("model", o->model, "Causal LM folder (XGLM) or cached hub id")->required();
  sub.add_option("--text", o->text,
                 "Text files, one sentence/paragraph per line: LANG=PATH or PATH "
                 "(comma-separated or repeated)")
      ->required();
  sub.add_option("--langs", o->langs,
                 "Languages of the bare --text files, in order (or a selection of LANG=PATH)");
  sub.add_option("--max-length", o->max_length,
                 "Window length in tokens (0 = the model's max_position_embeddings)")
      ->check(non_negative())
      ->capture_default_str();
  sub.add_option("--stride", o->stride, "Window step in tokens (0 = max_length / 2)")
      ->check(non_negative())
      ->capture_default_str();
  sub.add_option("--batch-size", o->batch_size, "Windows per forward pass")
      ->check(positive())
      ->capture_default_str();
  sub.add_option("--join", o->join,
                 "stream: lines concatenated, </s> between them (context crosses lines); "
                 "lines: each line scored on its own")
      ->capture_default_str();
  sub.add_option("--dtype", o->dtype, "Compute dtype: float32 or bfloat16")->capture_default_str();
  sub.add_option("--out", o->out, "Folder for perplexity.json");
  sub.add_flag("--no-progress,--quiet", o->no_progress, "No progress output on stderr");
  add_runtime_options(sub, o->runtime);
  return [o] { return run(*o); };
}

XLT_REGISTER_COMMAND("perplexity",
                     "Per-language perplexity, bits per byte and bits per character of a causal "
                     "LM (sliding windows, as Hugging Face)",
                     70, configure);

}  // namespace
}  // namespace xlt::cli
