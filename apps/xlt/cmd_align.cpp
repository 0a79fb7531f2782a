// `xlt align MODEL --input PARALLEL.tsv | --input LANG=FILE ... --out DIR`: cross-lingual
// alignment of a model's sentence embeddings at every layer, for every language pair of
// parallel sentences: translation retrieval (both directions), cosine of translation pairs vs
// random pairs, retrieval after per-language mean-centering. Writes DIR/alignment.csv (the
// contract header of xlt/analysis/alignment.h) and DIR/align.json (resolved options + rows).
#include <chrono>
#include <cstdio>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>

#include "analysis_common.h"
#include "command.h"
#include "xlt/analysis/align_text.h"
#include "xlt/analysis/alignment.h"
#include "xlt/analysis/embedding_file.h"
#include "xlt/analysis/embeddings.h"
#include "xlt/analysis/parallel_text.h"
#include "xlt/core/error.h"
#include "xlt/core/file.h"
#include "xlt/data/spec.h"
#include "xlt/io/safetensors.h"
#include "xlt/version.h"

namespace xlt::cli {
namespace {
namespace fs = std::filesystem;

struct AlignCliOptions {
  std::string model, out, langs;
  std::vector<std::string> inputs;
  EmbeddingCliOptions emb;
  int64_t max_sentences = -1;
  RuntimeOptions runtime;
  std::vector<std::string> model_flags_given;  // those below, as typed on the command line
};

// Flags that only shape a model run: with `xlt embed` output they would change nothing.
const char* const kModelOnlyFlags[] = {"--pool",      "--special", "--batch-size", "--max-length",
                                       "--tokenizer", "--dtype",   "--device"};

// --langs selects languages of the data: a language given twice is a mistake.
std::vector<std::string> lang_list(const std::string& value) {
  return value.empty() ? std::vector<std::string>{} : data::parse_lang_list(value, "--langs");
}

// MODEL given as `xlt embed` output (a folder with embeddings.safetensors, or a .safetensors file
// without a config.json beside it) instead of a model.
bool is_embeddings_input(const fs::path& p) {
  if (fs::is_directory(p)) {
    return fs::exists(p / "embeddings.safetensors") && !fs::exists(p / "config.json");
  }
  return p.extension() == ".safetensors" && !fs::exists(p.parent_path() / "config.json");
}

// Parallel embeddings from `xlt embed` output: metadata.tsv's `lang` column groups the rows; the
// k-th row of each language is row k of the parallel set (languages must have equal counts).
// Returns one LanguageLayers-ready matrix set per language and the layers found.
struct EmbeddedSet {
  std::vector<std::string> langs;
  std::vector<int> layers;
  std::vector<std::vector<analysis::Matrix>> per_lang;  // [lang][layer k]
  size_t rows = 0;
};

EmbeddedSet read_embedded_set(const fs::path& input, const AlignCliOptions& o) {
  const fs::path file = fs::is_directory(input) ? input / "embeddings.safetensors" : input;
  const fs::path meta_path = file.parent_path() / "metadata.tsv";
  const auto meta = analysis::read_metadata_tsv(meta_path);
  const int lang_col = meta.column("lang");
  if (lang_col < 0) {
    throw DataError(meta_path.string() +
                    ":1: no `lang` column; alignment needs the language of "
                    "every embedded sentence (embed with --input LANG=FILE)");
  }
  EmbeddedSet set;
  std::map<std::string, std::vector<int64_t>> rows_of;
  std::vector<std::string> order;
  for (size_t i = 0; i < meta.rows.size(); ++i) {
    const std::string& l = meta.rows[i][static_cast<size_t>(lang_col)];
    if (l.empty()) {
      // Row i is line i + 2 (after the header): without a language the row cannot be paired.
      throw DataError(meta_path.string() + ":" + std::to_string(i + 2) +
                      ": empty `lang`; alignment needs the language of every embedded sentence");
    }
    if (!rows_of.count(l)) order.push_back(l);
    rows_of[l].push_back(static_cast<int64_t>(i));
  }
  set.langs = o.langs.empty() ? order : lang_list(o.langs);
  for (const auto& l : set.langs) {
    if (!rows_of.count(l))
      throw DataError(meta_path.string() + ": no rows of language '" + l + "'");
    if (rows_of[l].size() != rows_of[set.langs[0]].size()) {
      throw DataError(meta_path.string() + ": " + std::to_string(rows_of[l].size()) + " rows of '" +
                      l + "' but " + std::to_string(rows_of[set.langs[0]].size()) + " of '" +
                      set.langs[0] + "'; parallel embeddings need equal counts");
    }
  }
  set.rows = rows_of[set.langs[0]].size();
  if (o.max_sentences >= 0) set.rows = std::min(set.rows, static_cast<size_t>(o.max_sentences));
  // Row k of each language is paired with row k of the others. With one line-aligned file per
  // language (embed --input LANG=FILE), that holds only if the same lines were embedded: embed
  // skips blank lines, so a blank line in one file but not the other shifts every later pair.
  const int source_col = meta.column("source"), line_col = meta.column("line");
  if (source_col >= 0 && line_col >= 0) {
    auto cell = [&](int64_t row, int col) -> const std::string& {
      return meta.rows[static_cast<size_t>(row)][static_cast<size_t>(col)];
    };
    std::set<std::string> sources;
    bool one_file_each = true;
    for (const auto& l : set.langs) {
      std::set<std::string> own;
      for (int64_t r : rows_of[l]) own.insert(cell(r, source_col));
      one_file_each = one_file_each && own.size() == 1 && sources.insert(*own.begin()).second;
    }
    for (size_t li = 1; one_file_each && li < set.langs.size(); ++li) {
      const auto& a = rows_of[set.langs[0]];
      const auto& b = rows_of[set.langs[li]];
      for (size_t k = 0; k < set.rows; ++k) {
        if (cell(a[k], line_col) == cell(b[k], line_col)) continue;
        throw DataError(
            meta_path.string() + ":" + std::to_string(b[k] + 2) + ": sentence " +
            std::to_string(k + 1) + " of '" + set.langs[li] + "' is line " + cell(b[k], line_col) +
            " of " + cell(b[k], source_col) + ", but sentence " + std::to_string(k + 1) + " of '" +
            set.langs[0] + "' is line " + cell(a[k], line_col) + " of " + cell(a[k], source_col) +
            ": the files are not line-aligned as embedded (embed skips blank lines; a blank "
            "line in one file only shifts every later pair). Remove it from both, or run "
            "`xlt align MODEL --input LANG=FILE ...` on the files themselves");
      }
    }
  }
  // Layers present in the file.
  auto st = io::SafetensorsFile::open(file);
  int max_layer = -1;
  std::vector<int> present;
  for (const auto& name : st->names()) {
    const std::string prefix = "embeddings.layer";
    if (name.rfind(prefix, 0) == 0) {
      try {
        present.push_back(std::stoi(name.substr(prefix.size())));
        max_layer = std::max(max_layer, present.back());
      } catch (const std::exception&) {
      }
    }
  }
  if (present.empty()) throw DataError(file.string() + ": no embeddings.layer{L} tensors");
  std::sort(present.begin(), present.end());
  set.layers = o.emb.layers == "all" ? present : analysis::parse_layers(o.emb.layers, max_layer, 0);
  for (int l : set.layers) {
    const std::string name = "embeddings.layer" + std::to_string(l);
    if (std::find(present.begin(), present.end(), l) == present.end()) {
      throw UsageError(file.string() + " has no tensor " + name);
    }
    const auto m = analysis::load_embedding_matrix(file, name).matrix;
    if (static_cast<size_t>(m.rows) != meta.rows.size()) {
      throw DataError(meta_path.string() + ": " + std::to_string(meta.rows.size()) + " rows for " +
                      std::to_string(m.rows) + " embeddings in " + name);
    }
    set.per_lang.resize(set.langs.size());
    for (size_t li = 0; li < set.langs.size(); ++li) {
      analysis::Matrix x(static_cast<int64_t>(set.rows), m.cols);
      for (size_t r = 0; r < set.rows; ++r) {
        const float* src = m.row(rows_of[set.langs[li]][r]);
        std::copy(src, src + m.cols, x.row(static_cast<int64_t>(r)));
      }
      set.per_lang[li].push_back(std::move(x));
    }
  }
  return set;
}

void print_rows(const std::vector<analysis::AlignmentRow>& rows) {
  std::printf("%5s %-6s %-6s %9s %9s %9s %9s %9s %9s\n", "layer", "a", "b", "a2b", "b2a",
              "cos_pair", "cos_rand", "c_a2b", "c_b2a");
  for (const auto& r : rows) {
    const auto& m = r.metrics;
    std::printf("%5d %-6s %-6s %9.4f %9.4f %9.4f %9.4f %9.4f %9.4f\n", r.layer, r.lang_a.c_str(),
                r.lang_b.c_str(), m.retrieval_a2b, m.retrieval_b2a, m.cos_pairs, m.cos_random,
                m.centered_retrieval_a2b, m.centered_retrieval_b2a);
  }
}

int run_from_embeddings(const AlignCliOptions& o, int threads,
                        std::chrono::steady_clock::time_point start) {
  if (!o.inputs.empty()) {
    throw UsageError("--input: MODEL is already embeddings (" + o.model +
                     "); parallel rows come from its metadata.tsv `lang` column");
  }
  if (!o.model_flags_given.empty()) {
    std::string flags;
    for (const auto& f : o.model_flags_given) flags += (flags.empty() ? "" : ", ") + f;
    throw UsageError(flags + ": MODEL is already embeddings (" + o.model +
                     "), computed with the settings `xlt embed` was given; these flags apply "
                     "when MODEL is a model");
  }
  const EmbeddedSet set = read_embedded_set(o.model, o);
  if (set.rows < 2) throw DataError(o.model + ": alignment needs at least 2 rows per language");
  std::vector<analysis::LanguageLayers> ll;
  for (size_t i = 0; i < set.langs.size(); ++i) {
    analysis::LanguageLayers x;
    x.lang = set.langs[i];
    for (const auto& m : set.per_lang[i]) x.layers.push_back(m.view());
    ll.push_back(std::move(x));
  }
  auto rows = analysis::alignment_by_layer(ll, threads);
  for (auto& r : rows) r.layer = set.layers.at(static_cast<size_t>(r.layer));
  const fs::path dir(o.out);
  analysis::write_alignment_csv(dir / "alignment.csv", rows);
  nlohmann::ordered_json j;
  j["xlt_version"] = XLT_VERSION;
  j["embeddings"] = o.model;
  j["config"] = {{"languages", set.langs},
                 {"layers", set.layers},
                 {"max_sentences", o.max_sentences},
                 {"threads", threads}};
  j["sentences"] = set.rows;
  j["chance_retrieval"] = 1.0 / static_cast<double>(set.rows);
  j["seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  write_file_atomic(dir / "align.json", j.dump(2) + "\n");
  print_rows(rows);
  return 0;
}

int run(const AlignCliOptions& o) {
  const int threads = apply_runtime_options(o.runtime);
  // --out is made ready before any work, and a run that fails leaves no empty folder behind.
  CreatedFolders out_folders(prepare_output_folder(o.out, "--out"));
  const auto start = std::chrono::steady_clock::now();
  if (is_embeddings_input(o.model)) return run_from_embeddings(o, threads, start);
  if (o.inputs.empty()) throw UsageError("--input is required when MODEL is a model");
  analysis::ParallelReadOptions ro;
  ro.langs = lang_list(o.langs);
  ro.max_rows = o.max_sentences;
  const analysis::ParallelText par = analysis::read_parallel_inputs(o.inputs, ro);
  if (par.blank_rows > 0) {
    std::fprintf(stderr,
                 "xlt align: left out %lld rows with a blank sentence in one of the languages\n",
                 static_cast<long long>(par.blank_rows));
  }
  if (par.rows() < 2) {
    // Checked again by align_parallel_text; here so that bad data fails before the model loads.
    throw DataError("parallel input: " + std::to_string(par.rows()) +
                    " rows; alignment metrics need at least 2 parallel sentences");
  }
  auto lm = load_analysis_model(o.model, o.emb.tokenizer, o.runtime.device, o.emb.dtype, "align");
  const int L = static_cast<int>(lm.model->config().num_hidden_layers);

  const analysis::EmbeddingOptions eo = to_embedding_options(o.emb, *lm.model, "align");
  const auto rows = analysis::align_parallel_text(*lm.model, *lm.tokenizer, par, eo, threads);

  const fs::path dir(o.out);
  analysis::write_alignment_csv(dir / "alignment.csv", rows);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  nlohmann::ordered_json j;
  j["xlt_version"] = XLT_VERSION;
  j["model"] = {{"spec", o.model},
                {"path", lm.path.string()},
                {"type", io::model_type_name(lm.model->type())},
                {"num_layers", L}};
  j["config"] = {{"inputs", o.inputs},
                 {"languages", par.langs},
                 {"layers", eo.layers},
                 {"pooling", o.emb.pool},
                 {"special_tokens", o.emb.special},
                 {"batch_size", o.emb.batch_size},
                 {"max_length", eo.max_length},
                 {"max_sentences", o.max_sentences},
                 {"device", o.runtime.device},
                 {"dtype", o.emb.dtype},
                 {"threads", threads}};
  j["sources"] = par.sources;
  j["sentences"] = par.rows();
  j["blank_rows_skipped"] = par.blank_rows;
  j["chance_retrieval"] = 1.0 / static_cast<double>(par.rows());
  j["seconds"] = seconds;
  write_file_atomic(dir / "align.json", j.dump(2) + "\n");

  print_rows(rows);
  std::fprintf(stderr, "xlt align: %zu sentences x %zu languages x %zu layers in %.1f s -> %s\n",
               par.rows(), par.langs.size(), eo.layers.size(), seconds,
               (dir / "alignment.csv").string().c_str());
  return 0;
}

Runner configure(CLI::App& sub) {
  auto o = std::make_shared<AlignCliOptions>();
  sub.add_option("model", o->model,
                 "Model folder (BERT, XLM-R, XGLM) or cached hub id; or `xlt embed` output (its "
                 "folder or embeddings.safetensors; languages from metadata.tsv's lang column)")
      ->required();
  sub.add_option("--input,--parallel", o->inputs,
                 "Parallel sentences: one TSV whose header row names the languages "
                 "(en<TAB>es<TAB>...), or LANG=FILE per line-aligned file (repeat)");
  sub.add_option("--out", o->out, "Output folder: alignment.csv, align.json")->required();
  sub.add_option("--langs", o->langs, "Languages to use, comma-separated (default: all)");
  o->emb.layers = "all";
  add_embedding_options(
      sub, o->emb, "--layers,--layer",
      "Layers as HF hidden_states (0 = embeddings): all, last, or a list like 0,6,12");
  sub.add_option("--max-sentences", o->max_sentences, "Use the first N rows (default: all)")
      ->check(non_negative());
  add_runtime_options(sub, o->runtime);
  return [o, app = &sub]() {
    for (const char* flag : kModelOnlyFlags) {
      if (app->count(flag) > 0) o->model_flags_given.emplace_back(flag);
    }
    return run(*o);
  };
}

}  // namespace

XLT_REGISTER_COMMAND("align",
                     "Cross-lingual alignment per layer of parallel sentences (retrieval, cosine, "
                     "mean-centred retrieval) as alignment.csv",
                     62, configure);

}  // namespace xlt::cli
