// The study's analysis stages: sentence embeddings of parallel sentences per layer (t-SNE map of
// the chosen layer, alignment metrics at every layer, before and after fine-tuning), the
// head-averaged attention of a parallel pair, and causal-LM perplexity per language.
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <set>
#include <sstream>

#include "study/internal.h"
#include "xlt/analysis/alignment.h"
#include "xlt/analysis/tsne.h"
#include "xlt/core/error.h"
#include "xlt/core/file.h"
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
  text::EncodeOptions eo;
  eo.truncation = text::TruncationStrategy::kLongestFirst;
  eo.max_length = static_cast<size_t>(max_length);
  const auto encs = tok.encode_batch(sentences, eo);
  const auto copts = eval::collate_options_for(tok);
  std::vector<Matrix> layers;
  c10::InferenceMode guard;
  const int64_t n = static_cast<int64_t>(sentences.size());
  for (int64_t start = 0; start < n; start += batch_size) {
    std::vector<int64_t> pos;
    for (int64_t i = start; i < std::min(n, start + batch_size); ++i) pos.push_back(i);
    models::ModelInputs in = eval::collate(encs, pos, copts);
    const int64_t T = in.input_ids.size(1);
    // Pooling weights: real, non-special tokens (all real tokens when a sentence has none).
    std::vector<float> w(pos.size() * static_cast<size_t>(T), 0.0f);
    for (size_t b = 0; b < pos.size(); ++b) {
      const auto& e = encs[static_cast<size_t>(pos[b])];
      // Right padding (BERT/XLM-R/XGLM tokenizers pad on the right in xlt's collate).
      const int64_t offset =
          copts.side == text::PaddingSide::kLeft ? T - static_cast<int64_t>(e.size()) : 0;
      int used = 0;
      for (size_t t = 0; t < e.size(); ++t) {
        const bool take = pooling == "cls" ? t == 0 : !e.special_tokens_mask[t];
        if (take) {
          w[b * static_cast<size_t>(T) + static_cast<size_t>(offset) + t] = 1.0f;
          ++used;
        }
      }
      if (used == 0) {
        for (size_t t = 0; t < e.size(); ++t) {
          w[b * static_cast<size_t>(T) + static_cast<size_t>(offset) + t] = 1.0f;
        }
      }
    }
    at::Tensor weights =
        at::from_blob(w.data(), {static_cast<int64_t>(pos.size()), T, 1}, at::kFloat).clone();
    models::ForwardOptions fo;
    fo.output_hidden_states = true;
    fo.compute_logits = false;
    const auto out = model.forward(in, fo);
    if (layers.empty()) layers.resize(out.hidden_states.size());
    for (size_t l = 0; l < out.hidden_states.size(); ++l) {
      at::Tensor h = out.hidden_states[l].to(at::kCPU, at::kFloat);
      at::Tensor pooled = (h * weights).sum(1) / weights.sum(1);  // [B, H]
      pooled = pooled.contiguous();
      Matrix& m = layers[l];
      if (m.rows == 0) m = Matrix(n, pooled.size(1));
      const float* src = pooled.data_ptr<float>();
      std::copy(src, src + pooled.numel(), m.row(start));
    }
  }
  return layers;
}

struct ParallelSet {
  std::vector<std::string> langs;
  std::vector<std::vector<std::string>> columns;  // [lang][row]
  std::string source;
};

ParallelSet read_parallel(const fs::path& path, const std::vector<std::string>& study_langs,
                          int64_t max_rows) {
  ParallelSet p;
  p.source = path.filename().string();
  std::istringstream in(read_file(path));
  std::string line;
  std::vector<std::string> header;
  std::vector<int> col_of;
  int line_no = 0;
  auto split = [](const std::string& s) {
    std::vector<std::string> f;
    std::string cur;
    std::istringstream ss(s);
    while (std::getline(ss, cur, '\t')) f.push_back(cur);
    return f;
  };
  while (std::getline(in, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    auto fields = split(line);
    if (header.empty()) {
      header = fields;
      for (const auto& l : study_langs) {
        auto it = std::find(header.begin(), header.end(), l);
        if (it != header.end()) {
          p.langs.push_back(l);
          col_of.push_back(static_cast<int>(it - header.begin()));
        }
      }
      p.columns.resize(p.langs.size());
      continue;
    }
    if (fields.size() != header.size()) {
      throw DataError(path.string() + ":" + std::to_string(line_no) + ": " +
                      std::to_string(fields.size()) + " fields, the header has " +
                      std::to_string(header.size()));
    }
    if (static_cast<int64_t>(p.columns.empty() ? 0 : p.columns[0].size()) >= max_rows) break;
    for (size_t i = 0; i < p.langs.size(); ++i) {
      p.columns[i].push_back(fields[static_cast<size_t>(col_of[i])]);
    }
  }
  if (p.langs.size() < 2) {
    throw DataError(path.string() + ": needs a header naming at least two study languages");
  }
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
  const double n = static_cast<double>(map_sentences.size());
  to.perplexity = std::min(a.tsne_perplexity, std::max(1.0, (n - 1.0) / 3.0 - 1e-6));
  to.max_iter = a.tsne_iterations;
  to.seed = ctx.config.seeds.front();
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
  analysis::write_alignment_csv(ctx.out / "analysis" / ("alignment_" + phase + ".csv"), rows_al);
  return {{"tsne", tsne}, {"alignment", alignment_json(rows_al)}, {"layers", L}, {"layer", use}};
}

}  // namespace

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
  } else {
    par.source = "the map sentences (analysis.sentences)";
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
    auto model = load_classifier(ctx, finetuned_model_dir(ctx.out, u.seed), u.seed, false);
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
  c10::InferenceMode guard;
  json pair = json::array();
  int64_t heads = 0;
  for (size_t i = 0; i < c.attention.sentences.size(); ++i) {
    const text::Encoding e = tok->encode(c.attention.sentences[i]);
    std::vector<int64_t> ids(e.ids.begin(), e.ids.end());
    models::ModelInputs in;
    in.input_ids = at::tensor(ids, at::kLong).unsqueeze(0);
    if (!e.token_type_ids.empty() && tok->info().uses_token_type_ids) {
      std::vector<int64_t> tt(e.token_type_ids.begin(), e.token_type_ids.end());
      in.token_type_ids = at::tensor(tt, at::kLong).unsqueeze(0);
    }
    models::ForwardOptions fo;
    fo.output_attentions = true;
    fo.compute_logits = false;
    const auto out = model->forward(in, fo);
    const at::Tensor att = out.attentions.at(static_cast<size_t>(c.attention.layer - 1));
    heads = att.size(1);
    const at::Tensor avg = att[0].to(at::kCPU, at::kFloat).mean(0).contiguous();  // [T, T]
    json weights = json::array();
    const int64_t T = avg.size(0);
    const float* p = avg.data_ptr<float>();
    for (int64_t r = 0; r < T; ++r)
      weights.push_back(std::vector<float>(p + r * T, p + (r + 1) * T));
    pair.push_back({{"lang", c.attention.languages[i]},
                    {"text", c.attention.sentences[i]},
                    {"tokens", e.tokens},
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
  for (const auto& lang : c.languages) {
    std::vector<std::string> lines;
    std::string source;
    if (auto it = c.perplexity.texts.find(lang); it != c.perplexity.texts.end()) {
      std::istringstream in(read_file(it->second));
      std::string line;
      while (std::getline(in, line) &&
             static_cast<int64_t>(lines.size()) < c.perplexity.max_lines) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        lines.push_back(line);
      }
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
    langs[lang] = r.to_json();
  }
  json out = {{"model", ctx.causal_lm.name}, {"languages", langs}};
  write_json(u.dir / "perplexity.json", out);
  return {{"model", model_info(*model, ctx.causal_lm)}, {"languages", langs.size()}};
}

}  // namespace xlt::study::detail
