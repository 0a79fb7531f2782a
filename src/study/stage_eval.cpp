// The study's model stages: random initialisation (demo), baseline evaluation, English
// fine-tuning through the train library (with its resume), and zero-shot evaluation. Evaluation
// units write the `xlt eval` files (results.json, results.csv, predictions.jsonl).
#include <chrono>

#include "study/internal.h"
#include "xlt/core/error.h"
#include "xlt/data/spec.h"
#include "xlt/eval/eval_run.h"
#include "xlt/eval/evaluate.h"
#include "xlt/eval/results.h"
#include "xlt/eval/sharded.h"
#include "xlt/io/dataset_download.h"
#include "xlt/models/model.h"
#include "xlt/text/tokenizer.h"
#include "xlt/train/finetune.h"
#include "xlt/version.h"

namespace xlt::study::detail {

json run_init(Context& ctx, const Unit& u) {
  const bool encoder = u.role == "encoder";
  const ModelSpec& spec =
      encoder ? ctx.config.encoders.at(static_cast<size_t>(u.encoder)).spec : ctx.config.causal_lm;
  ResolvedModel& m = encoder ? ctx.encoder : ctx.causal_lm;
  io::ModelConfig cfg = io::ModelConfig::load(spec.init);
  if (encoder) {
    cfg.num_labels = kNliLabels;
    cfg.id2label.clear();
    cfg.label2id.clear();
    for (int64_t i = 0; i < kNliLabels; ++i) {
      cfg.id2label[i] = "LABEL_" + std::to_string(i);
      cfg.label2id["LABEL_" + std::to_string(i)] = i;
    }
  }
  // The tokenizer was checked against cfg.vocab_size before any unit ran
  // (check_tokenizer_fits).
  auto model = models::create_model(cfg, spec.init_seed);
  models::SaveOptions so;
  so.tokenizer_dir =
      fs::is_directory(spec.tokenizer) ? spec.tokenizer : spec.tokenizer.parent_path();
  models::save_model(*model, m.dir, so);
  if (ctx.log) {
    *ctx.log << "initialised a random " << io::model_type_name(cfg.model_type) << " ("
             << model->num_parameters() << " parameters, seed " << spec.init_seed << ") in "
             << m.dir.string() << "\n";
  }
  return {{"model", model_info(*model, m)}};
}

namespace {

// Evaluates `model` (loaded from `model_path`) on every study language and writes the `xlt eval`
// files into `dir`, results.json in `xlt eval`'s layout (docs/eval-results-schema.json) plus
// the unit's "seed". Sharded over the ranks of a distributed launch exactly as `xlt eval` is
// (every rank gets the gathered predictions, so the returned accuracies agree); rank 0 writes.
json evaluate_all(Context& ctx, models::Model& model, const text::Tokenizer& tok,
                  const fs::path& dir, const std::string& label, uint64_t seed,
                  const fs::path& model_path, bool head_initialized) {
  const StudyConfig& c = ctx.config;
  eval::NliEvalConfig config;
  config.model = model_path.string();
  if (c.eval.files.empty()) {
    config.data = {c.eval.data};
  } else {
    for (const auto& [lang, file] : c.eval.files) config.data.push_back(lang + "=" + file);
  }
  config.langs = c.languages;
  config.format = c.eval.format;
  config.samples = c.eval.samples;
  config.seed = seed;  // the bootstrap's and a new head's; sampling's is recorded below
  config.new_head = head_initialized;
  config.num_labels = model.num_labels();
  config.bootstrap = c.eval.bootstrap_resamples;
  config.source_lang = c.source_lang;
  config.eval.batch_size = c.eval.batch_size;
  config.eval.max_tokens = c.eval.max_tokens;
  config.eval.max_length = c.eval.max_length;
  config.eval.progress = ctx.progress;
  config.eval.progress_label = label;
  config.device = ctx.device;
  config.threads = ctx.threads;
  eval::NliEvalRun run =
      eval::evaluate_datasets(model, tok, ctx.eval_sets(), config, head_initialized, nullptr);
  json accuracy = json::object();
  for (const auto& l : run.summary.languages) accuracy[l.lang] = l.accuracy;
  if (!ctx.writer()) return accuracy;
  run.model_path = model_path.string();
  run.initialized = model.load_report().initialized;
  json results = run.results_json();
  results["seed"] = seed;
  // The rows were drawn by the study's eval.sample_seed and eval.sampling, not by `seed`.
  results["config"]["sample_seed"] = c.eval.sample_seed;
  results["config"]["sampling"] = c.eval.sampling;
  std::vector<eval::Prediction> rows;
  for (const auto& p : run.predictions) {
    for (auto& r : p.to_predictions()) rows.push_back(std::move(r));
  }
  eval::write_results_json(dir / "results.json", results);
  eval::write_results_csv(dir / "results.csv", run.summary);
  eval::write_predictions_jsonl(dir / "predictions.jsonl", rows);
  return accuracy;
}

}  // namespace

json run_baseline(Context& ctx, const Unit& u) {
  const auto tok = load_study_tokenizer(ctx.encoder.tokenizer);
  // A fresh head seeded like the fine-tuning run of the same seed starts from.
  auto model = load_classifier(ctx, ctx.encoder.dir, u.seed, /*new_head=*/true);
  json acc =
      evaluate_all(ctx, *model, *tok, u.dir, "baseline", u.seed, ctx.encoder.dir, /*head=*/true);
  return {{"accuracy", acc}, {"model", model_info(*model, ctx.encoder)}};
}

json run_finetune(Context& ctx, const Unit& u, bool resume) {
  const StudyConfig& c = ctx.config;
  train::FinetuneConfig f;
  f.model = ctx.encoder.dir.string();
  f.tokenizer = ctx.encoder.tokenizer.string();
  std::string path = c.train.data;
  std::string format = c.train.format;
  if (io::is_dataset_spec(path)) {
    const auto files = io::resolve_dataset_spec(path);
    path = files.files.at(0).string();
    format = files.format;
  }
  f.format = data::parse_nli_format(format);
  if (data::has_language_column(path, f.format)) {
    f.train_specs = {path};
    f.langs = {c.source_lang};
  } else {
    f.train_specs = {c.source_lang + "=" + path};
  }
  if (!c.train.dev.empty()) {
    std::string dev = c.train.dev;
    if (io::is_dataset_spec(dev)) dev = io::resolve_dataset_spec(dev).files.at(0).string();
    f.dev_specs = {data::has_language_column(dev) ? dev : c.source_lang + "=" + dev};
    if (f.langs.empty() && data::has_language_column(dev)) f.langs = {c.source_lang};
  }
  f.out_dir = u.dir / "run";
  f.epochs = c.train.epochs;
  f.lr = c.train.learning_rate;
  // train.batch_size is the global batch: each rank takes its share (run_study checked that it
  // divides), so the schedule is that of one process.
  f.batch_size = c.train.batch_size / ctx.world();
  f.max_tokens = c.train.max_tokens / ctx.world();
  f.grad_accum = c.train.grad_accum;
  f.max_length = c.train.max_length;
  f.warmup_ratio = c.train.warmup_ratio;
  f.weight_decay = c.train.weight_decay;
  f.max_grad_norm = c.train.max_grad_norm;
  f.bf16 = c.train.bf16;
  f.seed = u.seed;
  f.samples = c.train.samples;
  if (c.train.sample_seed) f.sample_seed = static_cast<int64_t>(*c.train.sample_seed);
  f.sampling = data::parse_sampling(c.train.sampling);
  f.new_head = true;
  f.save_every = c.train.save_every;
  f.resume = resume;
  f.overwrite = !resume;
  // The unit's fingerprint holds the digests of the model, tokenizer and data (runner.cpp
  // resumes only when it matches): their paths may differ from the saved run's. And a lost peer
  // keeps the study's advice (rerun the study), not the trainer's.
  f.managed_by_caller = true;
  f.device = ctx.device;
  f.eval_batch_size = c.eval.batch_size;
  f.progress = ctx.progress;
  f.dist_timeout = ctx.dist_timeout;
  train::validate(f);
  const train::FinetuneResult r = train::finetune(f);
  if (r.stopped) throw UnitInterrupted{r.interrupted_by, r.steps, r.total_steps};
  json summary = {{"steps", r.steps},
                  {"total_steps", r.total_steps},
                  {"train_seconds", r.train_seconds},
                  {"tokens_per_second", r.tokens_per_second()},
                  {"model_dir", finetuned_model_dir(ctx.encoder_out(), u.seed).string()},
                  {"world_size", ctx.world()}};
  if (r.best_step >= 0) {
    summary["best_step"] = r.best_step;
    summary["best_dev_accuracy"] = r.best_accuracy;
  }
  return summary;
}

json run_zero_shot(Context& ctx, const Unit& u) {
  const fs::path dir = finetuned_model_dir(ctx.encoder_out(), u.seed);
  if (!fs::exists(dir)) {
    throw CheckpointError(dir.string() + ": the fine-tuned model of seed " +
                          std::to_string(u.seed) + " is missing (rerun the finetune stage)");
  }
  const auto tok = load_study_tokenizer(ctx.encoder.tokenizer);
  auto model = load_classifier(ctx, dir, u.seed, /*new_head=*/false);
  json acc = evaluate_all(ctx, *model, *tok, u.dir, "zero-shot", u.seed, dir, /*head=*/false);
  return {{"accuracy", acc}};
}

}  // namespace xlt::study::detail
