// The study's analysis stages: sentence embeddings of parallel sentences per layer (t-SNE map of
// the chosen layer, alignment metrics at every layer, before and after fine-tuning), the
// head-averaged attention of a parallel pair, and causal-LM perplexity per language.
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <set>

#include "study/internal.h"
#include "xlt/analysis/alignment.h"
#include "xlt/analysis/attention.h"
#include "xlt/analysis/embeddings.h"
#include "xlt/analysis/parallel_text.h"
#include "xlt/analysis/tsne.h"
#include "xlt/core/error.h"
#include "xlt/core/file.h"
#include "xlt/data/nli.h"
#include "xlt/data/spec.h"
#include "xlt/eval/collate.h"
#include "xlt/eval/perplexity.h"
#include "xlt/models/model.h"
#include "xlt/text/tokenizer.h"

namespace xlt::study::detail {
namespace {

using analysis::Matrix;

// Sentence embeddings of `sentences` at every layer (hidden_states order: 0 = embeddings):
// mean over the non-special tokens ("mean") or the first token ("cls"). Returns [layers][n, H].
std::vector<Matrix> sentence_embeddings(models::Model& model, const text::Tokenizer& tok,
                                        const std::vector<std::string>& sentences,
                                        const std::string& pooling, int64_t batch_size,
                                        int64_t max_length) {
  analysis::EmbeddingOptions eo;
  eo.pooling = analysis::parse_pooling(pooling);
  eo.special = analysis::SpecialTokenPolicy::kExclude;
  eo.batch_size = batch_size;
  eo.max_length = max_length;
  return analysis::sentence_embeddings(model, tok, sentences, eo).matrices;
}

struct ParallelSet {
  std::vector<std::string> langs;
  std::vector<std::vector<std::string>> columns;  // [lang][row]
  std::string source;
};

ParallelSet read_parallel(const fs::path& path, const std::vector<std::string>& study_langs,
                          int64_t max_rows) {
  analysis::ParallelReadOptions ro;
  ro.langs = study_langs;
  ro.ignore_missing = true;
  ro.max_rows = max_rows;
  analysis::ParallelText t;
  try {
    t = analysis::read_parallel_tsv(path, ro);
  } catch (const DataError& e) {
    // Keep the study's wording: the file must name at least two of the study's languages.
    throw DataError(std::string(e.what()) +
                    " (analysis.parallel_file needs a header naming at "
                    "least two study languages)");
  }
  ParallelSet p;
  p.source = path.filename().string();
  p.langs = std::move(t.langs);
  p.columns = std::move(t.columns);
  return p;
}

json alignment_json(const std::vector<analysis::AlignmentRow>& rows) {
  json out = json::array();
  for (const auto& r : rows) {
    out.push_back({{"layer", r.layer},
                   {"lang_a", r.lang_a},
                   {"lang_b", r.lang_b},
                   {"retrieval_a2b", r.metrics.retrieval_a2b},
                   {"retrieval_b2a", r.metrics.retrieval_b2a},
                   {"cos_pairs", r.metrics.cos_pairs},
                   {"cos_random", r.metrics.cos_random},
                   {"centered_retrieval_a2b", r.metrics.centered_retrieval_a2b},
                   {"centered_retrieval_b2a", r.metrics.centered_retrieval_b2a}});
  }
  return out;
}

// One phase (before/after fine-tuning): t-SNE map of the chosen layer, alignment per layer.
json analyse_model(Context& ctx, models::Model& model, const text::Tokenizer& tok,
                   const std::vector<std::string>& map_langs,
                   const std::vector<std::string>& map_sentences, const ParallelSet& par, int layer,
                   const std::string& phase) {
  const auto& a = ctx.config.analysis;
  const int64_t max_len = ctx.config.eval.max_length;
  auto layers = sentence_embeddings(model, tok, map_sentences, a.pooling, a.batch_size, max_len);
  const int L = static_cast<int>(layers.size()) - 1;
  const int use = layer < 0 ? L : layer;
  analysis::TsneOptions to;
  // tsne() follows scikit-learn (perplexity < n, lowered with a warning otherwise).
  to.perplexity = a.tsne_perplexity;
  to.max_iter = a.tsne_iterations;
  to.seed = a.tsne_seed ? *a.tsne_seed : ctx.config.seeds.front();
  to.threads = std::max(1, ctx.threads);
  const auto t = analysis::tsne(layers[static_cast<size_t>(use)].view(), to);
  json points = json::array();
  const size_t rows = map_sentences.size() / std::max<size_t>(1, map_langs.size());
  for (int64_t i = 0; i < t.n; ++i) {
    const size_t li = static_cast<size_t>(i) / rows;
    points.push_back({{"x", t.x(i)},
                      {"y", t.y(i)},
                      {"lang", map_langs[li]},
                      {"row", static_cast<size_t>(i) % rows},
                      {"sentence", map_sentences[static_cast<size_t>(i)]}});
  }
  json tsne = {{"points", points},
               {"kl_divergence", t.kl_divergence},
               {"perplexity", t.perplexity},
               {"iterations", t.iterations},
               {"method", analysis::to_string(t.method)},
               {"warnings", t.warnings}};
  // Alignment per layer over the parallel set.
  std::vector<std::vector<Matrix>> per_lang;
  for (const auto& col : par.columns) {
    per_lang.push_back(sentence_embeddings(model, tok, col, a.pooling, a.batch_size, max_len));
  }
  std::vector<analysis::LanguageLayers> ll;
  for (size_t i = 0; i < par.langs.size(); ++i) {
    analysis::LanguageLayers x;
    x.lang = par.langs[i];
    for (const auto& m : per_lang[i]) x.layers.push_back(m.view());
    ll.push_back(std::move(x));
  }
  const auto rows_al = analysis::alignment_by_layer(ll, std::max(1, ctx.threads));
  analysis::write_alignment_csv(ctx.encoder_out() / "analysis" / ("alignment_" + phase + ".csv"),
                                rows_al);
  return {{"tsne", tsne}, {"alignment", alignment_json(rows_al)}, {"layers", L}, {"layer", use}};
}

// The evaluation sample as a parallel set: its rows are translations of each other (the same
// source record in every language), so the premises of rows with distinct source-language
// premises (XNLI repeats each premise for three hypotheses) are parallel sentences. nullopt when
// the sets are not parallel.
std::optional<ParallelSet> eval_parallel(Context& ctx) {
  const auto& sets = ctx.eval_sets();
  const StudyConfig& c = ctx.config;
  ParallelSet p;
  const data::NliDataset* src = nullptr;
  for (const auto& ds : sets) {
    if (ds.lang == c.source_lang) src = &ds;
  }
  if (!src) src = &sets.front();
  for (const auto& ds : sets) {
    if (!data::is_parallel(*src, ds)) return std::nullopt;
  }
  std::vector<size_t> rows;
  std::set<std::string> seen;
  for (size_t i = 0; i < src->examples.size(); ++i) {
    if (static_cast<int64_t>(rows.size()) >= c.analysis.max_parallel) break;
    if (seen.insert(src->examples[i].premise).second) rows.push_back(i);
  }
  for (const auto& ds : sets) {
    p.langs.push_back(ds.lang);
    std::vector<std::string> col;
    for (size_t i : rows) col.push_back(ds.examples[i].premise);
    p.columns.push_back(std::move(col));
  }
  p.source = "the evaluation rows (distinct premises, parallel across languages)";
  return p;
}

}  // namespace

void check_analysis_inputs(const Context& ctx) {
  const StudyConfig& c = ctx.config;
  if (!c.analysis.parallel_file.empty()) {
    read_parallel(c.analysis.parallel_file, c.languages, c.analysis.max_parallel);
  }
}

void check_perplexity_inputs(const Context& ctx) {
  for (const auto& [lang, path] : ctx.config.perplexity.texts) {
    data::read_utf8_lines(path, ctx.config.perplexity.max_lines);
  }
}

json run_analysis(Context& ctx, const Unit& u) {
  const StudyConfig& c = ctx.config;
  const auto tok = load_study_tokenizer(ctx.encoder.tokenizer);
  std::vector<std::string> map_langs, map_sentences;
  for (const auto& lang : c.languages) {
    auto it = c.analysis.sentences.find(lang);
    if (it == c.analysis.sentences.end()) continue;
    map_langs.push_back(lang);
    for (const auto& s : it->second) map_sentences.push_back(s);
  }
  ParallelSet par;
  if (!c.analysis.parallel_file.empty()) {
    par = read_parallel(c.analysis.parallel_file, c.languages, c.analysis.max_parallel);
  } else if (auto rows = u.inputs["parallel"].is_null() ? std::optional<ParallelSet>()
                                                        : eval_parallel(ctx)) {
    par = std::move(*rows);
  } else {
    par.source = u.inputs["parallel"].is_null()
                     ? "the map sentences (analysis.sentences)"
                     : "the map sentences (analysis.sentences; the evaluation rows are not "
                       "parallel across languages)";
    par.langs = map_langs;
    for (const auto& l : map_langs) par.columns.push_back(c.analysis.sentences.at(l));
  }
  json out = {{"pooling", c.analysis.pooling},
              {"languages", map_langs},
              {"sentences", json::object()},
              {"tsne", json::object()},
              {"alignment",
               {{"source", par.source},
                {"languages", par.langs},
                {"sentences", par.columns.empty() ? 0 : par.columns[0].size()}}}};
  for (const auto& l : map_langs) out["sentences"][l] = c.analysis.sentences.at(l);
  json summary = json::object();
  {
    auto model = load_classifier(ctx, ctx.encoder.dir, u.seed, /*new_head=*/true);
    json r =
        analyse_model(ctx, *model, *tok, map_langs, map_sentences, par, c.analysis.layer, "before");
    out["tsne"]["before"] = r["tsne"];
    out["alignment"]["before"] = r["alignment"];
    out["layers"] = r["layers"];
    out["layer"] = r["layer"];
    summary["model"] = model_info(*model, ctx.encoder);
  }
  if (!u.inputs["finetune"].is_null()) {
    auto model =
        load_classifier(ctx, finetuned_model_dir(ctx.encoder_out(), u.seed), u.seed, false);
    json r =
        analyse_model(ctx, *model, *tok, map_langs, map_sentences, par, c.analysis.layer, "after");
    out["tsne"]["after"] = r["tsne"];
    out["alignment"]["after"] = r["alignment"];
    out["finetuned_seed"] = u.seed;
  }
  write_json(u.dir / "analysis.json", out);
  summary["points"] = map_sentences.size();
  summary["parallel_sentences"] = out["alignment"]["sentences"];
  return summary;
}

json run_attention(Context& ctx, const Unit& u) {
  const StudyConfig& c = ctx.config;
  const bool causal = c.attention.model == "causal_lm";
  const ResolvedModel& spec = causal ? ctx.causal_lm : ctx.encoder;
  const auto tok = load_study_tokenizer(spec.tokenizer);
  auto model = causal ? load_causal_lm(ctx) : load_classifier(ctx, spec.dir, 0, true);
  json pair = json::array();
  int64_t heads = 0;
  analysis::AttentionOptions ao;
  ao.layers = {c.attention.layer};
  ao.special = analysis::SpecialTokenPolicy::kKeep;
  for (size_t i = 0; i < c.attention.sentences.size(); ++i) {
    const auto a = analysis::sentence_attention(*model, *tok, c.attention.sentences[i], ao);
    heads = a.num_heads;
    const auto& w = a.layers.front().weights;  // [1, T, T] head mean
    const size_t T = a.tokens.size();
    json weights = json::array();
    for (size_t r = 0; r < T; ++r) {
      weights.push_back(std::vector<float>(w.begin() + static_cast<std::ptrdiff_t>(r * T),
                                           w.begin() + static_cast<std::ptrdiff_t>((r + 1) * T)));
    }
    pair.push_back({{"lang", c.attention.languages[i]},
                    {"text", c.attention.sentences[i]},
                    {"tokens", a.tokens},
                    {"weights", weights}});
  }
  json out = {{"model", spec.name},
              {"role", spec.role},
              {"layer", c.attention.layer},
              {"heads", heads},
              {"pair", pair}};
  write_json(u.dir / "attention.json", out);
  return {{"model", model_info(*model, spec)}, {"heads", heads}};
}

json run_perplexity(Context& ctx, const Unit& u) {
  const StudyConfig& c = ctx.config;
  const auto tok = load_study_tokenizer(ctx.causal_lm.tokenizer);
  auto model = load_causal_lm(ctx);
  json langs = json::object();
  // The study's languages, then those only perplexity.texts names (an LM's perplexity needs no
  // NLI data; the report lists them after the study's).
  std::vector<std::string> order = c.languages;
  for (const auto& [lang, file] : c.perplexity.texts) {
    if (std::find(order.begin(), order.end(), lang) == order.end()) order.push_back(lang);
  }
  for (const auto& lang : order) {
    std::vector<std::string> lines;
    std::string source;
    if (auto it = c.perplexity.texts.find(lang); it != c.perplexity.texts.end()) {
      lines = data::read_utf8_lines(it->second, c.perplexity.max_lines);
      source = it->second.string();
    } else if (c.perplexity.texts.empty()) {
      // Default text: the unique premises of the evaluation sample.
      std::set<std::string> seen;
      for (const auto& ds : ctx.eval_sets()) {
        if (ds.lang != lang) continue;
        for (const auto& ex : ds.examples) {
          if (static_cast<int64_t>(lines.size()) >= c.perplexity.max_lines) break;
          if (seen.insert(ex.premise).second) lines.push_back(ex.premise);
        }
        source = ds.source + " (unique premises)";
      }
    }
    if (lines.empty()) continue;
    eval::PerplexityOptions po;
    po.max_length = std::min(c.perplexity.max_length, model->config().max_position_embeddings);
    po.stride = c.perplexity.stride > 0 ? std::min(c.perplexity.stride, po.max_length) : 0;
    po.batch_size = c.perplexity.batch_size;
    po.progress = ctx.progress;
    po.progress_label = "perplexity " + lang;
    eval::PerplexityResult r = eval::text_perplexity(*model, *tok, lines, po);
    r.lang = lang;
    r.source = source;
    if (std::isnan(r.bits_per_char) && ctx.log) {
      *ctx.log << "perplexity " << lang << ": perplexity.stride = max_length (" << po.max_length
               << " after the model's positions) leaves tokens unscored, so "
               << "bits per character and byte are not given; a smaller stride scores them all\n";
    }
    langs[lang] = r.to_json();
  }
  json out = {{"model", ctx.causal_lm.name}, {"languages", langs}};
  write_json(u.dir / "perplexity.json", out);
  return {{"model", model_info(*model, ctx.causal_lm)}, {"languages", langs.size()}};
}

}  // namespace xlt::study::detail
