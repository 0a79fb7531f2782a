// `xlt eval MODEL --data SPEC --langs ...`: zero-shot NLI evaluation per language with bootstrap
// confidence intervals and transfer gaps; results.json / results.csv / predictions.jsonl under
// --out and a table on stdout. The pipeline lives in xlt/eval/eval_run.h.
#include <iostream>
#include <memory>

#include "command.h"
#include "xlt/core/file.h"
#include "xlt/data/nli.h"
#include "xlt/eval/eval_run.h"

namespace xlt::cli {
namespace {

struct EvalCliOptions {
  eval::NliEvalConfig config;
  std::string out;
  bool no_progress = false;
  bool no_sort = false;
  models::ProfileOptions profile;
  RuntimeOptions runtime;
};

int run(EvalCliOptions& o) {
  o.config.threads = apply_runtime_options(o.runtime);
  o.config.device = o.runtime.device;
  o.config.eval.sort_by_length = !o.no_sort;
  o.config.eval.progress = !o.no_progress;
  // Under a distributed launch every rank classifies a slice; rank 0 writes and prints.
  const bool writer = init_distributed(o.runtime);
  if (!writer) o.config.eval.progress = false;
  // An --out that cannot be written is refused before the evaluation, not after it.
  // A run that fails after this (a bad model, a head of the wrong size) leaves no empty --out.
  CreatedFolders out_folders(writer && !o.out.empty() ? prepare_output_folder(o.out, "--out")
                                                      : std::vector<std::filesystem::path>{});
  std::unique_ptr<models::StepProfiler> profiler;
  if (writer && !o.profile.dir.empty()) {
    o.profile.device = models::parse_device(o.config.device);
    profiler = std::make_unique<models::StepProfiler>(o.profile);
    o.config.eval.profiler = profiler.get();
  }
  eval::NliEvalRun result = eval::run_nli_eval(o.config, writer ? &std::cerr : nullptr);
  if (!writer) return 0;
  if (profiler && profiler->finished()) {
    std::cerr << models::format_profile_table(profiler->summary(), 15)
              << "xlt eval: profile of batches " << o.profile.skip + 1 << ".."
              << o.profile.skip + o.profile.steps << " in " << o.profile.dir.string()
              << "/{trace.json,ops.csv,profile.json}\n";
  } else if (profiler) {
    std::cerr << "xlt eval: " << profiler->unfinished_note() << "\n";
  }
  if (!o.out.empty()) {
    eval::write_eval_outputs(result, o.out);
    std::cerr << "xlt eval: wrote " << o.out << "/results.json, results.csv, predictions.jsonl\n";
  }
  std::cout << eval::format_eval_table(result);
  return 0;
}

Runner configure(CLI::App& sub) {
  auto o = std::make_shared<EvalCliOptions>();
  auto& c = o->config;
  sub.add_option("model", c.model,
                 "Model folder (config.json, safetensors, tokenizer files) or cached hub id")
      ->required();
  sub.add_option("--data", c.data,
                 "Evaluation data: LANG=PATH (repeatable), a file with a language column, or "
                 "a downloaded dataset (xnli:lang=hi:split=test; see xlt download-data)")
      ->required();
  sub.add_option("--langs", c.langs, "Languages to evaluate, comma-separated (e.g. en,es,fr,hi)");
  sub.add_option("--samples", c.samples,
                 "Examples per language, drawn with --seed (same rows in parallel sets; 0 = all)")
      ->check(non_negative())
      ->capture_default_str();
  sub.add_option("--seed", c.seed, "Seed for sampling, a new head's initialisation and bootstrap")
      ->capture_default_str();
  sub.add_option("--out", o->out, "Folder for results.json, results.csv, predictions.jsonl");
  sub.add_option("--batch-size", c.eval.batch_size, "Pairs per forward pass")
      ->check(positive())
      ->capture_default_str();
  sub.add_option("--max-length", c.eval.max_length,
                 "Truncate premise+hypothesis to this many tokens (longest_first)")
      ->check(positive())
      ->capture_default_str();
  sub.add_option("--max-tokens", c.eval.max_tokens,
                 "Also cap each batch at this many padded tokens (rows x longest); 0 = off")
      ->check(non_negative())
      ->capture_default_str();
  add_execution_options(sub, c.eval.packed, c.eval.attention);
  add_profile_options(sub, o->profile);
  std::string formats;
  for (const auto& f : data::nli_format_names()) formats += (formats.empty() ? "" : ", ") + f;
  sub.add_option("--format", c.format, "Data format: " + formats)->capture_default_str();
  sub.add_flag("--skip-bad-rows", c.skip_bad_rows,
               "Skip (and count) malformed rows instead of stopping at the first");
  sub.add_option("--num-labels", c.num_labels, "Classification labels")
      ->check(positive())
      ->capture_default_str();
  sub.add_flag("--new-head", c.new_head,
               "Replace the checkpoint's classification head by a fresh one of --num-labels "
               "labels seeded by --seed (for a head of another label count than the data's; the "
               "untrained-head baseline)");
  sub.add_option("--bootstrap", c.bootstrap, "Bootstrap resamples for the 95% CIs")
      ->check(positive())
      ->capture_default_str();
  sub.add_option("--source-lang", c.source_lang,
                 "Transfer source: gap = accuracy(source) - accuracy(lang)")
      ->capture_default_str();
  sub.add_option("--dtype", c.dtype, "Compute dtype: float32 or bfloat16")->capture_default_str();
  sub.add_flag("--no-progress,--quiet", o->no_progress, "No progress output on stderr");
  // A benchmark baseline: batches in data order instead of length-sorted (docs/eval.md).
  sub.add_flag("--no-sort", o->no_sort,
               "Batches in file order instead of length-sorted (slower; a benchmark baseline)");
  add_runtime_options(sub, o->runtime, /*distributed=*/true);
  return [o] { return run(*o); };
}

XLT_REGISTER_COMMAND("eval",
                     "Evaluate an NLI classifier per language: accuracy, macro-F1, confusion, "
                     "bootstrap CIs, chance level and transfer gaps",
                     40, configure);

}  // namespace
}  // namespace xlt::cli
