// `xlt finetune MODEL --train SPEC [--dev SPEC] --out DIR`: English NLI fine-tuning with Hugging
// Face Trainer semantics (AdamW without decay on biases/LayerNorm, linear warm-up and decay,
// clipping, seeded length-grouped batches), best/last checkpoints in HF layout and exact resume.
// The work is xlt::train::finetune; this file maps flags onto FinetuneConfig.
#include <cmath>
#include <filesystem>
#include <iomanip>
#include <iostream>

#include "command.h"
#include "xlt/core/error.h"
#include "xlt/core/interrupt.h"
#include "xlt/data/spec.h"
#include "xlt/train/finetune.h"

namespace xlt::cli {
namespace {

namespace fs = std::filesystem;

struct FinetuneCliOptions {
  train::FinetuneConfig config;
  std::vector<std::string> langs;
  std::string format = "auto";
  std::string eval_every = "epoch";
  std::string out;
  bool quiet = false;
  RuntimeOptions runtime;
};

int64_t parse_eval_every(const std::string& v) {
  if (v == "epoch") return 0;
  try {
    size_t used = 0;
    const long long n = std::stoll(v, &used);
    if (used == v.size() && n >= 1) return n;
  } catch (const std::exception&) {
  }
  throw UsageError("--eval-every: expected a number of steps (>= 1) or 'epoch', got '" + v + "'");
}

int run(FinetuneCliOptions& o) {
  const int threads = apply_runtime_options(o.runtime);
  auto& c = o.config;
  c.out_dir = o.out;
  c.device = o.runtime.device;
  c.format = data::parse_nli_format(o.format);
  c.eval_every = parse_eval_every(o.eval_every);
  c.langs = o.langs.empty() ? std::vector<std::string>{} : data::parse_lang_list(o.langs);
  c.progress = !o.quiet;
  c.dist_timeout = o.runtime.dist_timeout;
  if (!init_distributed(o.runtime)) {
    train::finetune(c);  // a non-zero rank: rank 0 reports
    return 0;
  }
  std::cerr << "xlt finetune: " << threads << " threads on " << c.device << "\n";
  const auto r = train::finetune(c);

  std::cout << std::fixed << std::setprecision(4);
  std::cout << "steps " << r.steps << "/" << r.total_steps << (r.stopped ? " (stopped)" : "")
            << "\n";
  if (!std::isnan(r.best_accuracy)) {
    std::cout << "best dev accuracy " << r.best_accuracy << " at step " << r.best_step << "\n";
  }
  if (!std::isnan(r.last_accuracy)) std::cout << "last dev accuracy " << r.last_accuracy << "\n";
  std::cout << "train tokens/s " << std::setprecision(1) << r.tokens_per_second() << "\n";
  std::cout << "output " << c.out_dir.string()
            << (fs::exists(c.out_dir / "best") ? "/{best,last,log.jsonl,results.json}\n"
                                               : "/{last,log.jsonl,results.json} (no best/: "
                                                 "stopped before the first dev evaluation)\n");
  if (r.interrupted_by != 0) {
    std::cerr << "xlt finetune: stopped by " << interrupt_signal_name(r.interrupted_by)
              << " at step " << r.steps << "/" << r.total_steps << "; state saved in "
              << (c.out_dir / "state").string()
              << ". To continue, run the same command with --resume\n";
    return interrupt_exit_code(r.interrupted_by);
  }
  return 0;
}

Runner configure(CLI::App& sub) {
  auto o = std::make_shared<FinetuneCliOptions>();
  auto& c = o->config;
  sub.add_option("model", c.model, "Pretrained model folder or cached hub id (BERT or XLM-R)")
      ->required();
  sub.add_option("--train", c.train_specs,
                 "Training data: LANG=PATH, PATH or a downloaded dataset (multinli:split=train), "
                 "as eval's --data")
      ->required();
  sub.add_option("--dev", c.dev_specs,
                 "English dev set for model selection (LANG=PATH, PATH or xnli:lang=en:split=dev)");
  sub.add_option("--out", o->out, "Output folder (best/, last/, state/, log.jsonl, ...)")
      ->required();
  sub.add_option("--langs", o->langs, "Languages to read from files with a language column");
  sub.add_option("--format", o->format,
                 "Data format: auto, xnli-tsv, xtreme-tsv, mnli-jsonl, "
                 "hf-jsonl, hf-csv")
      ->capture_default_str();
  sub.add_flag("--skip-bad-rows", c.skip_bad_rows, "Count and skip malformed data rows");
  sub.add_option("--tokenizer", c.tokenizer, "Tokenizer folder or file (default: the model's)");
  sub.add_option("--epochs", c.epochs, "Training epochs")->capture_default_str();
  sub.add_option("--lr", c.lr, "Peak learning rate")->capture_default_str();
  sub.add_option("--batch-size", c.batch_size, "Examples per micro-batch")->capture_default_str();
  sub.add_option("--max-tokens", c.max_tokens,
                 "Token budget per micro-batch (rows x longest) instead of --batch-size rows; "
                 "0 = off")
      ->capture_default_str();
  add_execution_options(sub, c.packed, c.attention);
  add_profile_options(sub, c.profile);
  sub.add_option("--grad-accum", c.grad_accum, "Micro-batches per optimizer step")
      ->capture_default_str();
  sub.add_option("--max-length", c.max_length,
                 "Truncate pairs to this many tokens (specials "
                 "included)")
      ->capture_default_str();
  sub.add_option("--warmup-ratio", c.warmup_ratio, "Warm-up as a fraction of all steps")
      ->capture_default_str();
  sub.add_option("--warmup-steps", c.warmup_steps, "Warm-up steps (overrides --warmup-ratio)")
      ->capture_default_str();
  sub.add_option("--weight-decay", c.weight_decay, "AdamW weight decay (not on biases/LayerNorm)")
      ->capture_default_str();
  sub.add_option("--max-grad-norm", c.max_grad_norm, "Clip the global gradient norm (0 = off)")
      ->capture_default_str();
  sub.add_option("--seed", c.seed, "Seed for head init, data order, subset and dropout")
      ->capture_default_str();
  sub.add_option("--samples", c.samples, "Seeded subset of N training examples (0 = all)")
      ->capture_default_str();
  sub.add_option("--max-steps", c.max_steps, "Total optimizer steps (overrides --epochs)")
      ->capture_default_str();
  sub.add_option("--eval-every", o->eval_every, "Evaluate on --dev every N steps or 'epoch'")
      ->capture_default_str();
  sub.add_option("--eval-batch-size", c.eval_batch_size, "Batch size for dev evaluation")
      ->capture_default_str();
  sub.add_option("--log-every", c.log_every, "Write a log.jsonl record every N steps")
      ->capture_default_str();
  sub.add_option("--save-every", c.save_every,
                 "Save resumable state every N steps (0 = at the "
                 "end only)")
      ->capture_default_str();
  sub.add_option("--stop-after", c.stop_after,
                 "Stop after this global step (state saved, schedule unchanged); continue with "
                 "--resume")
      ->capture_default_str();
  sub.add_flag("--group-by-length,!--no-group-by-length", c.group_by_length,
               "Batch similar lengths together (seeded; default on)");
  sub.add_flag("--new-head", c.new_head, "Replace a classification head in the checkpoint");
  sub.add_flag("--resume", c.resume, "Continue the run saved in --out (same options)");
  sub.add_flag("--overwrite", c.overwrite, "Start over in an --out that holds a previous run");
  sub.add_flag("--quiet,--no-progress", o->quiet, "No progress bar");
  sub.add_flag("--bf16", c.bf16, "bf16 autocast for training on a GPU (--device cuda)");
  sub.add_flag("--no-overlap-comm{false}", c.overlap_comm,
               "Distributed runs: all-reduce the gradients after the backward pass instead of "
               "bucket by bucket during it (same gradients; for measuring the overlap)");
  add_runtime_options(sub, o->runtime, /*distributed=*/true);
  return [o] { return run(*o); };
}

}  // namespace

XLT_REGISTER_COMMAND("finetune",
                     "Fine-tune BERT/XLM-R on English NLI (HF Trainer semantics): best/last "
                     "checkpoints, log.jsonl, exact resume",
                     50, configure);

}  // namespace xlt::cli
