// The fine-tuning loop behind `xlt finetune` (see finetune.h and docs/finetune.md): input checks,
// the Trainer-style step loop with evaluation, checkpoints, logs and exact resume.
#include "xlt/train/finetune.h"

#include <ATen/record_function.h>
#include <torch/version.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <optional>
#include <sstream>

#include "train/distributed.h"
#include "train/out_folder.h"
#include "train/state.h"
#include "train/train_data.h"
#include "xlt/core/error.h"
#include "xlt/core/file.h"
#include "xlt/core/interrupt.h"
#include "xlt/core/lock.h"
#include "xlt/core/progress.h"
#include "xlt/data/random.h"
#include "xlt/data/spec.h"
#include "xlt/eval/collate.h"
#include "xlt/eval/evaluate.h"
#include "xlt/eval/results.h"
#include "xlt/eval/sharded.h"
#include "xlt/io/dataset_download.h"
#include "xlt/io/hub_cache.h"
#include "xlt/version.h"

namespace xlt::train {
namespace fs = std::filesystem;
using json = nlohmann::json;

void validate(const FinetuneConfig& c) {
  auto positive = [](int64_t v, const char* flag) {
    if (v < 1)
      throw UsageError(std::string(flag) + " must be at least 1, got " + std::to_string(v));
  };
  if (c.model.empty()) throw UsageError("finetune: MODEL is required");
  if (c.train_specs.empty()) throw UsageError("finetune: --train is required");
  if (c.out_dir.empty()) throw UsageError("finetune: --out is required");
  positive(c.epochs, "--epochs");
  positive(c.batch_size, "--batch-size");
  positive(c.grad_accum, "--grad-accum");
  positive(c.log_every, "--log-every");
  positive(c.eval_batch_size, "--eval-batch-size");
  if (c.max_tokens < 0) throw UsageError("--max-tokens must be >= 0");
  if (c.max_tokens > 0 && c.max_tokens < c.max_length)
    throw UsageError("--max-tokens " + std::to_string(c.max_tokens) + " is below --max-length " +
                     std::to_string(c.max_length) +
                     ": a batch must hold at least one full-length example");
  if (c.max_length < 8) {
    throw UsageError("--max-length must be at least 8, got " + std::to_string(c.max_length));
  }
  if (!(c.lr > 0) || !std::isfinite(c.lr)) throw UsageError("--lr must be a positive number");
  if (c.warmup_ratio < 0 || c.warmup_ratio > 1)
    throw UsageError("--warmup-ratio must be in [0, 1]");
  if (c.warmup_steps < 0) throw UsageError("--warmup-steps must be >= 0");
  if (c.weight_decay < 0) throw UsageError("--weight-decay must be >= 0");
  if (c.samples < 0 || c.max_steps < 0 || c.eval_every < 0 || c.save_every < 0 || c.stop_after < 0)
    throw UsageError(
        "--samples, --max-steps, --eval-every, --save-every, --stop-after must be >= 0");
  if (c.resume && c.overwrite) throw UsageError("--resume and --overwrite exclude each other");
  if (c.dist_timeout < 1) throw UsageError("--dist-timeout must be at least 1 second");
  // --langs chooses languages in language-column files and names a bare single-language file;
  // where every value names its language it would be silently ignored. A resumed run keeps its
  // saved options (runs started before this check may hold such a --langs).
  if (!c.langs.empty() && !c.resume) {
    bool needed = false;
    using Values = std::pair<const char*, const std::vector<std::string>*>;
    for (const Values& v : {Values{"--train", &c.train_specs}, Values{"--dev", &c.dev_specs}}) {
      for (const auto& s : *v.second) {
        needed = needed || io::is_dataset_spec(s) || data::parse_data_spec(s, v.first).lang.empty();
      }
    }
    if (!needed) {
      throw UsageError(
          "--langs selects languages in --train/--dev files with a language column, but every "
          "value here is LANG=PATH, which names its language: drop --langs and give only the "
          "LANG=PATH values you want");
    }
  }
}

json config_to_json(const FinetuneConfig& c) {
  json j = {{"model", c.model},
            {"tokenizer", c.tokenizer},
            {"train", c.train_specs},
            {"dev", c.dev_specs},
            {"langs", c.langs},
            {"format", std::string(data::nli_format_name(c.format))},
            {"skip_bad_rows", c.skip_bad_rows},
            {"epochs", c.epochs},
            {"lr", c.lr},
            {"batch_size", c.batch_size},
            {"grad_accum", c.grad_accum},
            {"max_length", c.max_length},
            {"warmup_ratio", c.warmup_ratio},
            {"warmup_steps", c.warmup_steps},
            {"weight_decay", c.weight_decay},
            {"max_grad_norm", c.max_grad_norm},
            {"seed", c.seed},
            {"samples", c.samples},
            {"max_steps", c.max_steps},
            {"group_by_length", c.group_by_length},
            {"new_head", c.new_head},
            {"param_grouping", c.grouping == ParamGrouping::kHfNoDecay ? "hf_no_decay" : "single"},
            {"eval_every", c.eval_every == 0 ? json("epoch") : json(c.eval_every)},
            {"log_every", c.log_every},
            {"save_every", c.save_every},
            {"stop_after", c.stop_after},
            {"device", c.device},
            {"eval_batch_size", c.eval_batch_size}};
  // Only when not the default, so that single-process float32 runs keep their fingerprint.
  if (c.bf16) j["bf16"] = true;
  if (!c.overlap_comm) j["overlap_comm"] = false;
  if (c.max_tokens > 0) j["max_tokens"] = c.max_tokens;
  if (!c.packed) j["packed"] = false;
  if (c.attention != models::ForwardOptions::Attention::kAuto)
    j["attention"] = models::attention_name(c.attention);
  if (c.sample_seed >= 0) j["sample_seed"] = c.sample_seed;
  if (c.sampling != data::Sampling::kXlt) j["sampling"] = "numpy";
  if (distributed::current()) j["world_size"] = distributed::current()->size();
  if (!c.profile.dir.empty()) {
    j["profile"] = {
        {"dir", c.profile.dir.string()}, {"skip", c.profile.skip}, {"steps", c.profile.steps}};
  }
  return j;
}

namespace {

// A local path as an absolute one (a hub id or dataset spec as given): a resume from another
// working folder compares what the paths name.
std::string absolute_input(const std::string& p) {
  std::error_code ec;
  if (p.empty() || !fs::exists(p, ec)) return p;
  const fs::path a = fs::absolute(p, ec);
  return ec ? p : a.lexically_normal().string();
}

std::string absolute_spec(const std::string& s, const char* flag) {
  if (io::is_dataset_spec(s)) return s;
  try {
    const data::DataSpec d = data::parse_data_spec(s, flag);
    const std::string path = absolute_input(d.path);
    return d.lang.empty() ? path : d.lang + "=" + path;
  } catch (const std::exception&) {
    return s;
  }
}

// Keys that do not change the trained weights may differ on --resume.
json fingerprint(const FinetuneConfig& c) {
  json j = config_to_json(c);
  for (const char* k : {"eval_every", "log_every", "save_every", "stop_after", "device",
                        "eval_batch_size", "overlap_comm", "packed", "attention", "profile"})
    j.erase(k);
  j["model"] = absolute_input(c.model);
  j["tokenizer"] = absolute_input(c.tokenizer);
  for (const char* key : {"train", "dev"}) {
    for (auto& s : j[key]) s = absolute_spec(s.get<std::string>(), key);
  }
  return j;
}

// Two spellings of an input path name the same input when they resolve to the same file or
// folder: only what they name shapes the run. Fingerprints hold absolute paths; one saved by an
// xlt before that may hold a relative one, which resolves against the working folder of now.
bool same_input_path(const std::string& a, const std::string& b) {
  if (a == b) return true;
  if (a.empty() || b.empty()) return false;
  std::error_code ec;
  return fs::equivalent(a, b, ec) && !ec;
}

bool same_data_specs(const json& saved, const json& now, const char* flag) {
  if (!saved.is_array() || !now.is_array() || saved.size() != now.size()) return saved == now;
  for (size_t i = 0; i < saved.size(); ++i) {
    if (saved[i] == now[i]) continue;
    if (!saved[i].is_string() || !now[i].is_string()) return false;
    const std::string a = saved[i].get<std::string>(), b = now[i].get<std::string>();
    if (io::is_dataset_spec(a) || io::is_dataset_spec(b)) return false;
    try {
      const data::DataSpec x = data::parse_data_spec(a, flag), y = data::parse_data_spec(b, flag);
      if (x.lang != y.lang || !same_input_path(x.path, y.path)) return false;
    } catch (const std::exception&) {
      return false;
    }
  }
  return true;
}

// The options that differ between a saved run's fingerprint and this one's, one line each ("" =
// the same run). Input paths compare by what they name; a key that an older xlt left out of the
// fingerprint (the tokenizer before it counted) is not compared.
std::string fingerprint_differences(const json& saved, const json& now, const FinetuneConfig& c) {
  std::string diff;
  json keys = json::object();
  for (const auto& [k, v] : saved.items()) keys[k] = true;
  for (const auto& [k, v] : now.items()) keys[k] = true;
  for (const auto& [k, unused] : keys.items()) {
    const json a = saved.value(k, json()), b = now.value(k, json());
    if (a == b) continue;
    const bool path_key = k == "model" || k == "tokenizer" || k == "train" || k == "dev";
    if (path_key && c.managed_by_caller) continue;
    // Keys an older xlt did not fingerprint yet: the tokenizer, the data digests.
    if ((k == "tokenizer" || k == "train_data" || k == "dev_data") && !saved.contains(k)) continue;
    if ((k == "model" || k == "tokenizer") && a.is_string() && b.is_string()) {
      // An empty tokenizer is the model folder's.
      const std::string model_a = saved.value("model", ""), model_b = now.value("model", "");
      const std::string x =
          a.get<std::string>().empty() && k == "tokenizer" ? model_a : a.get<std::string>();
      const std::string y =
          b.get<std::string>().empty() && k == "tokenizer" ? model_b : b.get<std::string>();
      if (same_input_path(x, y)) continue;
    }
    if ((k == "train" || k == "dev") && same_data_specs(a, b, k == "train" ? "--train" : "--dev"))
      continue;
    if ((k == "train_data" || k == "dev_data") && a.is_string() && b.is_string()) {
      auto count = [](const json& d) {
        const std::string s = d.get<std::string>();
        return s.substr(s.rfind(':') + 1);
      };
      diff += "\n  " + k + ": the " + (k == "train_data" ? "--train" : "--dev") +
              " examples differ from the saved run's (a file changed since: " + count(a) +
              " examples then, " + count(b) + " now)";
      continue;
    }
    diff += "\n  " + k + ": saved " + a.dump() + ", now " + b.dump();
  }
  return diff;
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

struct DevScore {
  double accuracy = 0, macro_f1 = 0, loss = 0;
  int64_t n = 0;
  eval::EvalPredictions predictions;
};

// Appends JSON lines, flushed per record, so a crash loses at most the line being written.
class LogWriter {
 public:
  LogWriter(const fs::path& path, int64_t keep_until_step, bool fresh) : path_(path) {
    if (fresh) {
      write_file_atomic(path, "");
    } else {
      truncate_after(keep_until_step);
    }
    out_.open(path, std::ios::app);
    if (!out_) throw IoError(path.string() + ": cannot open for appending");
  }
  void write(const json& record) {
    out_ << record.dump() << "\n";
    out_.flush();
    if (!out_) throw IoError(path_.string() + ": write failed");
  }

 private:
  // A resumed run re-does everything after the saved step: drop those records (and a torn last
  // line) so the log reads as one uninterrupted run.
  void truncate_after(int64_t step) {
    std::string kept;
    if (fs::exists(path_)) {
      std::istringstream in(read_file(path_));
      for (std::string line; std::getline(in, line);) {
        auto j = json::parse(line, nullptr, /*allow_exceptions=*/false);
        if (j.is_object() && j.value("step", int64_t{-1}) <= step) kept += line + "\n";
      }
    }
    write_file_atomic(path_, kept);
  }
  fs::path path_;
  std::ofstream out_;
};

class Trainer {
 public:
  explicit Trainer(const FinetuneConfig& c) : c_(c) {}
  FinetuneResult run();

 private:
  void prepare_output();
  void clear_earlier_run();
  bool stop_requested();  // sets stop_signal_
  void load_data();
  bool resuming_run_without_dev_digest() const;
  void load_model();
  void plan();
  void check_lengths_fit();
  void train_loop();
  bool do_step(const std::vector<data::Batch>& batches, size_t b, size_t e);
  DevScore evaluate();
  void eval_point();
  void save_state();
  void finish();
  void write_train_config();
  double epoch_progress() const;

  const FinetuneConfig& c_;
  fs::path out_;
  std::unique_ptr<models::Model> model_;
  std::unique_ptr<text::Tokenizer> tokenizer_;
  fs::path tokenizer_dir_;
  std::unique_ptr<torch::optim::AdamW> optimizer_;
  data::NliDataset train_, dev_;
  bool has_dev_ = false;
  detail::EncodedSet enc_;
  std::vector<int> model_to_data_, data_to_model_;
  eval::CollateOptions collate_;
  c10::Device device_{c10::kCPU};
  int64_t steps_per_epoch_ = 0, num_epochs_ = 0, warmup_ = 0;
  int64_t batches_in_epoch_ = 0;
  // Under --max-tokens the batch count varies by epoch: batches of epoch e (one entry per epoch).
  std::vector<int64_t> epoch_batch_counts_;
  std::vector<data::Batch> epoch_plan(int64_t epoch) const;
  detail::TrainerState st_;
  std::unique_ptr<LogWriter> log_;
  std::unique_ptr<Progress> bar_;
  std::unique_ptr<models::StepProfiler> profiler_;  // --profile, on the writing rank
  double last_lr_ = 0, last_grad_norm_ = 0;
  int64_t window_tokens_ = 0;
  double window_seconds_ = 0;
  FinetuneResult result_;
  int64_t resumed_from_ = -1;
  int64_t saved_step_ = -1;  // step of the last state/ on disk (for the advice after a lost rank)
  std::optional<DevScore> last_score_;   // of the evaluation at st_.last_eval_step
  distributed::Group* group_ = nullptr;  // data-parallel group; nullptr = one process
  std::unique_ptr<detail::OverlappedGradReducer> reducer_;  // with group_ and overlap_comm
  bool writer_ = true;                // rank 0 (or one process) writes the output folder
  int stop_signal_ = 0;               // the signal that stops the run (a peer's under DP)
  std::unique_ptr<FolderLock> lock_;  // rank 0's, held for the whole run (check_out_folder)
  bool created_out_ = false;          // --out did not exist before this run made it
  void log(const json& record) {
    if (log_) log_->write(record);
  }
  // Quoted by a collective that fails because a peer rank was lost.
  void failure_context(const std::string& activity);
};

void Trainer::failure_context(const std::string& activity) {
  // The study gives its own advice (its units resume by rerunning it; --overwrite would empty it).
  if (!group_ || c_.managed_by_caller) return;
  std::string advice;
  if (saved_step_ >= 0) {
    advice = "rerun the same command with --resume to continue from step " +
             std::to_string(saved_step_) + " (saved in " + (out_ / "state").string() + ")";
  } else {
    advice =
        "no training state was saved yet: rerun the same command with --overwrite "
        "(--save-every N saves one to resume from)";
  }
  group_->set_failure_context(activity, advice);
}

void Trainer::prepare_output() {
  out_ = c_.out_dir;
  std::error_code exists_ec;
  if (c_.resume && !fs::exists(out_, exists_ec)) {
    throw ConfigError("--resume: --out " + out_.string() +
                      " does not exist, so there is no run to continue (start without --resume)");
  }
  // Only the writer checks and locks the folder: other ranks would find rank 0's lock.
  if (writer_) {
    created_out_ = !fs::exists(out_, exists_ec);
    lock_ = detail::check_out_folder(out_, c_.overwrite);
  }
  const bool occupied = fs::exists(out_ / "state") || fs::exists(out_ / "log.jsonl") ||
                        fs::exists(out_ / "last") || fs::exists(out_ / "best");
  const bool saved = detail::has_state(out_ / "state");
  if (c_.resume) {
    if (!saved) {
      // Started, but stopped before its first save: nothing to continue from.
      throw ConfigError(
          "--resume: " + (out_ / "state").string() + " holds no saved training state" +
          (occupied ? " (the run there stopped before its first save, or state/ was removed): "
                      "start it over with --overwrite instead of --resume"
                    : " (start without --resume)"));
    }
  } else if (occupied && !c_.overwrite) {
    throw ConfigError(
        "--out " + out_.string() + " already holds a fine-tuning run (state/, log.jsonl, best/ " +
        "or last/): " +
        (saved ? "use --resume to continue it or --overwrite to start over"
               : "it has no saved state/ (it stopped before its first save, or state/ was "
                 "removed), so it cannot be resumed; use --overwrite to start over"));
  }
  if (c_.overwrite) {
    // The run would delete its own starting point once everything is loaded.
    std::error_code e;
    for (const std::string& input : {c_.model, c_.tokenizer}) {
      if (input.empty() || !fs::exists(input, e)) continue;
      const fs::path in = fs::weakly_canonical(input, e);
      for (const char* name : {"state", "best", "last"}) {
        const fs::path rel = in.lexically_relative(fs::weakly_canonical(out_ / name, e));
        if (!rel.empty() && *rel.begin() != "..") {
          throw ConfigError("--overwrite would delete " + input + ", which this run starts " +
                            "from (it is in " + (out_ / name).string() +
                            "): copy it elsewhere first");
        }
      }
    }
  }
  std::error_code ec;
  fs::create_directories(out_, ec);
  if (ec) throw IoError("--out " + out_.string() + ": cannot create folder: " + ec.message());
  // Every rank has checked the folder before rank 0 changes it.
  if (group_) group_->barrier();
}

// --overwrite: the earlier run goes only once data, model, tokenizer and plan were all read and
// checked, so a mistyped input does not cost the run it was meant to replace.
void Trainer::clear_earlier_run() {
  if (!c_.overwrite || !writer_) return;
  std::error_code ec;
  for (const char* name : {"state", "best", "last", "log.jsonl", "results.json"})
    fs::remove_all(out_ / name, ec);
}

bool Trainer::resuming_run_without_dev_digest() const {
  if (!c_.resume) return false;
  try {
    const json saved = json::parse(read_file(out_ / "state" / "trainer_state.json"));
    // trainer_state.json keeps the fingerprint under "config".
    return saved.contains("config") && saved["config"].is_object() &&
           !saved["config"].contains("dev_data");
  } catch (const std::exception&) {
    return false;  // no readable state: the resume is refused with its own message
  }
}

void Trainer::load_data() {
  // read_dataset checks each file's labels against the NLI label set; run() checks them again
  // against the loaded head.
  train_ = detail::read_dataset(c_.train_specs, c_.langs, "--train", c_.format, c_.skip_bad_rows);
  data::subsample(train_, c_.samples,
                  c_.sample_seed >= 0 ? static_cast<uint64_t>(c_.sample_seed) : c_.seed,
                  c_.sampling);
  std::cerr << "train: " << train_.size() << " examples (" << train_.source << ")\n";
  if (!c_.dev_specs.empty()) {
    // Without --langs, a multilingual dev file (XNLI 1.0's xnli.dev.tsv, xnli:split=dev) is cut
    // to the training languages: selecting the checkpoint on the target languages would leak
    // them into a zero-shot evaluation. A run an older xlt saved (no dev digest) resumes with
    // the dev set it started with, every language.
    std::vector<std::string> train_langs;
    if (c_.langs.empty() && !resuming_run_without_dev_digest()) {
      for (size_t b = 0, e; b <= train_.lang.size(); b = e + 1) {
        e = std::min(train_.lang.find('+', b), train_.lang.size());
        if (e > b) train_langs.push_back(train_.lang.substr(b, e - b));
      }
    }
    dev_ = detail::read_dataset(c_.dev_specs, c_.langs, "--dev", c_.format, c_.skip_bad_rows,
                                &train_langs);
    has_dev_ = true;
    std::cerr << "dev: " << dev_.size() << " examples (" << dev_.source << ")\n";
  }
}

void Trainer::load_model() {
  const auto loc = io::resolve_model_location(c_.model);
  models::LoadOptions lo;
  lo.num_labels = data::LabelSet::nli().size();
  lo.new_head = c_.new_head;
  lo.seed = c_.seed;
  model_ = models::load_model(loc.path, lo);
  std::cerr << model_->load_report().summary() << "\n";
  if (model_->kind() != models::ModelKind::kSequenceClassification) {
    throw ConfigError(c_.model + ": " + io::model_type_name(model_->type()) +
                      " is not a sequence-classification model (finetune supports bert and "
                      "xlm-roberta)");
  }
  // A head trained on NLI keeps its own label order (mapped by name); generic names become
  // entailment/neutral/contradiction so the saved config is self-describing.
  const auto nli = data::LabelSet::nli();
  const auto mapping = eval::map_labels(model_->config(), nli);
  model_to_data_ = mapping.model_to_data;
  if (!mapping.by_name) {
    auto& cfg = model_->mutable_config();
    cfg.id2label.clear();
    cfg.label2id.clear();
    for (int i = 0; i < nli.size(); ++i) {
      cfg.id2label[i] = nli.names[static_cast<size_t>(i)];
      cfg.label2id[nli.names[static_cast<size_t>(i)]] = i;
    }
  }
  data_to_model_.assign(model_to_data_.size(), 0);
  for (size_t k = 0; k < model_to_data_.size(); ++k)
    data_to_model_[static_cast<size_t>(model_to_data_[k])] = static_cast<int>(k);

  const fs::path tok_path = c_.tokenizer.empty() ? loc.path : fs::path(c_.tokenizer);
  tokenizer_ = text::load_tokenizer(tok_path);
  tokenizer_dir_ = fs::is_directory(tok_path) ? tok_path : tok_path.parent_path();
  models::check_tokenizer_fits(tokenizer_->vocab_size(), *model_, tok_path);
  // Batches are collated on the host and moved by the model's forward, which reads their masks
  // there to plan packing (see models::to_device).
  collate_ = eval::collate_options_for(*tokenizer_);
  device_ = models::parse_device(c_.device);
  model_->to(device_, c10::kFloat);
  if (group_) detail::broadcast_weights(*model_, *group_);
  if (group_ && c_.overlap_comm) {
    // Test hook: XLT_TEST_BUCKET_BYTES=N gives a tiny model many buckets (out-of-order hooks).
    const char* b = std::getenv("XLT_TEST_BUCKET_BYTES");
    const int64_t bytes = b ? std::atoll(b) : 0;
    reducer_ = bytes > 0
                   ? std::make_unique<detail::OverlappedGradReducer>(*model_, *group_, bytes, bytes)
                   : std::make_unique<detail::OverlappedGradReducer>(*model_, *group_);
    if (writer_)
      std::cerr << "gradient all-reduce: " << reducer_->num_buckets()
                << " bucket(s), overlapped with the backward pass\n";
  }
}

// A pair longer than the model's positions would fail in the middle of training (or at the first
// dev evaluation): found here, before the output folder holds anything of this run.
void Trainer::check_lengths_fit() {
  const int64_t limit = models::max_sequence_length(*model_);
  if (limit <= 0 || c_.max_length <= limit) return;
  auto longest = [](const std::vector<int64_t>& lengths) {
    return lengths.empty() ? int64_t{0} : *std::max_element(lengths.begin(), lengths.end());
  };
  std::vector<std::pair<const char*, int64_t>> sets = {{"--train", longest(enc_.lengths)}};
  if (has_dev_) {
    const auto dev = detail::encode_training_set(*tokenizer_, dev_, c_.max_length, data_to_model_,
                                                 /*progress=*/false);
    sets.emplace_back("--dev", longest(dev.lengths));
  }
  for (const auto& [flag, n] : sets) {
    if (n <= limit) continue;
    throw DataError(std::string(flag) + ": a pair has " + std::to_string(n) +
                    " tokens at --max-length " + std::to_string(c_.max_length) +
                    " but the model's positions cover " + std::to_string(limit) +
                    " (max_position_embeddings in its config.json): use " + "--max-length " +
                    std::to_string(limit) + " or less");
  }
}

void Trainer::plan() {
  enc_ =
      detail::encode_training_set(*tokenizer_, train_, c_.max_length, data_to_model_, c_.progress);
  check_lengths_fit();
  // Per rank under data parallelism: ceil(n / world) examples (DistributedSampler's padding).
  const int64_t world = group_ ? group_->size() : 1;
  const int64_t per_rank = (train_.size() + world - 1) / world;
  batches_in_epoch_ = (per_rank + c_.batch_size - 1) / c_.batch_size;
  steps_per_epoch_ = (batches_in_epoch_ + c_.grad_accum - 1) / c_.grad_accum;
  if (c_.max_tokens > 0) {
    // Plans are cheap (a shuffle and sorts); count each epoch's steps for the schedule.
    st_.total_steps = 0;
    for (int64_t e = 0;; ++e) {
      const auto n = static_cast<int64_t>(epoch_plan(e).size());
      epoch_batch_counts_.push_back(n);
      st_.total_steps += (n + c_.grad_accum - 1) / c_.grad_accum;
      if (c_.max_steps > 0 ? st_.total_steps >= c_.max_steps : e + 1 >= c_.epochs) break;
    }
    num_epochs_ = static_cast<int64_t>(epoch_batch_counts_.size());
    if (c_.max_steps > 0) st_.total_steps = c_.max_steps;
    batches_in_epoch_ = epoch_batch_counts_.front();
    steps_per_epoch_ = (batches_in_epoch_ + c_.grad_accum - 1) / c_.grad_accum;
  } else if (c_.max_steps > 0) {
    st_.total_steps = c_.max_steps;
    num_epochs_ = (c_.max_steps + steps_per_epoch_ - 1) / steps_per_epoch_;
  } else {
    st_.total_steps = steps_per_epoch_ * c_.epochs;
    num_epochs_ = c_.epochs;
  }
  warmup_ = resolve_warmup_steps(c_.warmup_steps, c_.warmup_ratio, st_.total_steps);
  st_.fingerprint = fingerprint(c_);
  // What the paths held: an edited file under the same name is another run.
  st_.fingerprint["train_data"] = detail::dataset_digest(train_);
  if (has_dev_) st_.fingerprint["dev_data"] = detail::dataset_digest(dev_);

  OptimizerConfig oc;
  oc.lr = c_.lr;
  oc.weight_decay = c_.weight_decay;
  oc.grouping = c_.grouping;
  optimizer_ = make_optimizer(*model_, oc);
  if (c_.resume) {
    auto saved = detail::load_state(out_ / "state", *model_, *optimizer_);
    const std::string diff = fingerprint_differences(saved.fingerprint, st_.fingerprint, c_);
    if (!diff.empty()) {
      throw ConfigError("--resume: the options differ from the saved run's (" +
                        (out_ / "state").string() + "); use the same ones:" + diff);
    }
    const json digests = {{"train_data", st_.fingerprint.value("train_data", json())},
                          {"dev_data", st_.fingerprint.value("dev_data", json())}};
    st_ = saved;
    // This run's spelling from now on: absolute paths, also for a run an older xlt saved with
    // relative ones (it can then be resumed from another working folder too).
    st_.fingerprint = fingerprint(c_);
    for (const auto& [k, v] : digests.items()) {
      if (!v.is_null()) st_.fingerprint[k] = v;
    }
    resumed_from_ = st_.global_step;
    saved_step_ = st_.global_step;
    std::cerr << "resuming at step " << st_.global_step << " (epoch " << st_.epoch << ", batch "
              << st_.batch_in_epoch << ")\n";
  }
}

void Trainer::write_train_config() {
  json j;
  j["xlt_version"] = XLT_VERSION;
  j["torch_version"] = TORCH_VERSION;
  j["config"] = config_to_json(c_);
  const auto& rep = model_->load_report();
  j["model"] = {{"type", io::model_type_name(model_->type())},
                {"source", rep.source.string()},
                {"parameters", model_->num_parameters()},
                {"initialized", rep.initialized},
                {"ignored", rep.ignored},
                {"head_initialized", !rep.initialized.empty()},
                {"model_to_data_labels", model_to_data_}};
  j["data"] = {{"train",
                {{"source", train_.source},
                 {"examples", train_.size()},
                 {"label_counts", train_.label_counts()},
                 {"tokens", enc_.tokens},
                 {"truncated", enc_.truncated},
                 {"no_gold_label", train_.report.no_gold_label},
                 {"bad_rows_skipped", train_.report.bad_rows}}}};
  if (has_dev_) {
    j["data"]["dev"] = {{"source", dev_.source},
                        {"examples", dev_.size()},
                        {"no_gold_label", dev_.report.no_gold_label},
                        {"bad_rows_skipped", dev_.report.bad_rows}};
  }
  j["resolved"] = {
      {"total_steps", st_.total_steps},
      {"steps_per_epoch", steps_per_epoch_},
      {"batches_per_epoch", batches_in_epoch_},
      {"epochs", num_epochs_},
      {"warmup_steps", warmup_},
      {"threads", at::get_num_threads()},
      {"world_size", group_ ? group_->size() : 1},
      {"global_batch_size", c_.batch_size * c_.grad_accum * (group_ ? group_->size() : 1)}};
  if (c_.max_tokens > 0) {
    j["resolved"]["global_batch_size"] = nullptr;  // rows vary under a token budget
    j["resolved"]["global_max_tokens"] =
        c_.max_tokens * c_.grad_accum * (group_ ? group_->size() : 1);
    j["resolved"]["batches_per_epoch_each"] = epoch_batch_counts_;
  }
  if (resumed_from_ >= 0) j["resumed_from_step"] = resumed_from_;
  write_file_atomic(out_ / "train_config.json", j.dump(2) + "\n");
}

double Trainer::epoch_progress() const {
  const auto e = static_cast<size_t>(st_.epoch);
  const int64_t n = e < epoch_batch_counts_.size() ? epoch_batch_counts_[e] : batches_in_epoch_;
  return static_cast<double>(st_.epoch) +
         static_cast<double>(st_.batch_in_epoch) / static_cast<double>(std::max<int64_t>(1, n));
}

std::vector<data::Batch> Trainer::epoch_plan(int64_t epoch) const {
  return detail::rank_epoch_batches(enc_.lengths, c_.batch_size, c_.seed, epoch, c_.group_by_length,
                                    group_ ? group_->size() : 1, group_ ? group_->rank() : 0,
                                    c_.max_tokens);
}

DevScore Trainer::evaluate() {
  eval::EvalOptions eo;
  eo.batch_size = c_.eval_batch_size;
  eo.packed = c_.packed;
  eo.attention = c_.attention;
  eo.max_length = c_.max_length;
  eo.label_map = model_to_data_;
  eo.progress = false;
  DevScore s;
  s.predictions = eval::evaluate_nli_sharded(*model_, *tokenizer_, dev_, eo, group_);
  const auto& p = s.predictions;
  s.n = p.size();
  s.accuracy = eval::accuracy(p.gold, p.pred);
  s.macro_f1 = eval::macro_f1(eval::confusion_matrix(p.gold, p.pred, dev_.labels.size()));
  double nll = 0;
  for (int64_t i = 0; i < s.n; ++i) {
    const float q =
        p.probs[static_cast<size_t>(i)][static_cast<size_t>(p.gold[static_cast<size_t>(i)])];
    nll -= std::log(std::max(q, 1e-30f));
  }
  s.loss = nll / static_cast<double>(std::max<int64_t>(1, s.n));
  return s;
}

void Trainer::eval_point() {
  if (!has_dev_ || st_.last_eval_step == st_.global_step) return;
  failure_context("the dev evaluation at step " + std::to_string(st_.global_step));
  last_score_ = evaluate();
  const DevScore& s = *last_score_;
  st_.last_eval_step = st_.global_step;
  const bool best = s.accuracy > st_.best_accuracy;
  if (best) {
    st_.best_accuracy = s.accuracy;
    st_.best_macro_f1 = s.macro_f1;
    st_.best_step = st_.global_step;
    models::SaveOptions so;
    so.tokenizer_dir = tokenizer_dir_;
    if (writer_) models::save_model(*model_, out_ / "best", so);
  }
  log({{"type", "eval"},
       {"step", st_.global_step},
       {"epoch", epoch_progress()},
       {"dev_accuracy", s.accuracy},
       {"dev_macro_f1", s.macro_f1},
       {"dev_loss", s.loss},
       {"dev_n", s.n},
       {"best", best}});
  result_.last_accuracy = s.accuracy;
  std::ostringstream o;
  o << "step " << st_.global_step << ": dev accuracy " << std::fixed << std::setprecision(4)
    << s.accuracy << " (best " << st_.best_accuracy << " at step " << st_.best_step << ")";
  std::cerr << (bar_ ? "\n" : "") << o.str() << "\n";
}

void Trainer::save_state() {
  failure_context("saving the state at step " + std::to_string(st_.global_step));
  if (writer_) detail::save_state(out_ / "state", *model_, *optimizer_, st_);
  if (group_) group_->barrier();  // the other ranks wait until the state is on disk
  saved_step_ = st_.global_step;
}

bool Trainer::do_step(const std::vector<data::Batch>& batches, size_t b, size_t e) {
  if (profiler_) profiler_->begin_step();
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<models::ModelInputs> micro;
  for (size_t i = b; i < e; ++i) {
    RECORD_USER_SCOPE("xlt::collate");
    auto in = eval::collate(enc_.encodings, batches[i], collate_);
    in.labels = eval::collate_labels(enc_.labels, batches[i]);
    micro.push_back(std::move(in));
  }
  StepConfig sc;
  sc.lr = c_.lr * linear_schedule_factor(st_.global_step, warmup_, st_.total_steps);
  sc.max_grad_norm = c_.max_grad_norm;
  sc.train_mode = true;
  sc.packed = c_.packed;
  sc.attention = c_.attention;
  sc.dropout_seed = data::derive_seed(data::derive_seed(c_.seed, detail::kDropoutStream),
                                      static_cast<uint64_t>(st_.global_step));
  if (group_) {
    // Independent dropout masks per rank; gradients and statistics averaged before clipping.
    sc.dropout_seed = data::derive_seed(*sc.dropout_seed, static_cast<uint64_t>(group_->rank()));
    if (reducer_) {
      sc.before_micro_batch = [this](size_t i, size_t n) {
        reducer_->before_micro_batch(i + 1 == n);
      };
      sc.after_backward = [this](StepStats& s) { reducer_->finish(s); };
    } else {
      sc.after_backward = [this](StepStats& s) { detail::average_gradients(*model_, s, *group_); };
    }
  }
  failure_context("training step " + std::to_string(st_.global_step + 1) + " of " +
                  std::to_string(st_.total_steps));
  StepStats stats;
  {
    detail::Bf16Autocast autocast(c_.bf16, device_);
    stats = optimization_step(*model_, *optimizer_, micro, sc);
  }
  const double dt = seconds_since(t0);
  if (profiler_) {
    if (profiler_->end_step()) {
      std::cerr << (bar_ ? "\n" : "") << models::format_profile_table(profiler_->summary(), 15)
                << "xlt finetune: profile of steps " << st_.global_step + 2 - c_.profile.steps
                << ".." << st_.global_step + 1 << " in " << c_.profile.dir.string()
                << "/{trace.json,ops.csv,profile.json}\n";
    }
  }

  ++st_.global_step;
  detail::maybe_kill_for_test(group_ ? group_->rank() : 0, st_.global_step);
  st_.batch_in_epoch = static_cast<int64_t>(e);
  st_.tokens_seen += stats.tokens;
  st_.train_seconds += dt;
  st_.pending_loss += stats.loss;
  ++st_.pending_steps;
  result_.train_tokens += stats.tokens;
  result_.train_seconds += dt;
  window_tokens_ += stats.tokens;
  window_seconds_ += dt;
  last_lr_ = sc.lr;
  last_grad_norm_ = stats.grad_norm;

  const bool last = st_.global_step >= st_.total_steps;
  if (st_.global_step % c_.log_every == 0 || last) {
    const double tps = window_seconds_ > 0 ? window_tokens_ / window_seconds_ : 0.0;
    const double loss = st_.pending_loss / static_cast<double>(st_.pending_steps);
    log({{"type", "train"},
         {"step", st_.global_step},
         {"epoch", epoch_progress()},
         {"loss", loss},
         {"learning_rate", last_lr_},
         {"grad_norm", last_grad_norm_},
         {"tokens_per_s", tps},
         {"tokens", st_.tokens_seen}});
    std::ostringstream o;
    o << "loss " << std::fixed << std::setprecision(4) << loss << " | "
      << Progress::human_count(tps) << " tok/s";
    bar_->set_postfix(o.str());
    st_.pending_loss = 0;
    st_.pending_steps = 0;
    window_tokens_ = 0;
    window_seconds_ = 0;
  }
  bar_->set(st_.global_step);
  if (c_.eval_every > 0 && st_.global_step % c_.eval_every == 0) eval_point();
  if (c_.eval_every == 0 && e >= batches.size()) eval_point();  // end of epoch
  if (last) return false;
  if ((c_.stop_after > 0 && st_.global_step >= c_.stop_after) || stop_requested()) {
    result_.stopped = true;
    result_.interrupted_by = stop_signal_ != 0 ? stop_signal_ : interrupt_signal();
    return false;
  }
  if (c_.save_every > 0 && st_.global_step % c_.save_every == 0) save_state();
  return true;
}

// Every rank reports the agreed signal, also where none arrived (a study on rank 0 must stop
// too).
bool Trainer::stop_requested() {
  stop_signal_ = distributed::agreed_signal(group_, interrupt_signal());
  return stop_signal_ != 0;
}

void Trainer::train_loop() {
  bar_ = std::make_unique<Progress>("finetune", st_.total_steps, "steps", c_.progress && writer_);
  bar_->set(st_.global_step);
  // A resumed run already at --stop-after stops before taking a step (it used to take one more
  // on every such resume).
  if (c_.stop_after > 0 && st_.global_step >= c_.stop_after && st_.global_step < st_.total_steps) {
    result_.stopped = true;
    bar_->finish();
    return;
  }
  while (st_.global_step < st_.total_steps && st_.epoch < num_epochs_) {
    const auto batches = epoch_plan(st_.epoch);
    const size_t ga = static_cast<size_t>(c_.grad_accum);
    for (size_t b = static_cast<size_t>(st_.batch_in_epoch); b < batches.size(); b += ga) {
      if (!do_step(batches, b, std::min(batches.size(), b + ga))) {
        bar_->finish();
        return;
      }
    }
    ++st_.epoch;
    st_.batch_in_epoch = 0;
  }
  bar_->finish();
}

void Trainer::finish() {
  // The final weights are always evaluated; a stop before the end is not an evaluation point
  // (evaluating there would let an interrupted run pick a different best checkpoint).
  if (!result_.stopped) eval_point();
  models::SaveOptions so;
  so.tokenizer_dir = tokenizer_dir_;
  if (writer_) {
    models::save_model(*model_, out_ / "last", so);
    if (!has_dev_) models::save_model(*model_, out_ / "best", so);
  }
  save_state();

  result_.steps = st_.global_step;
  result_.total_steps = st_.total_steps;
  result_.best_step = has_dev_ ? st_.best_step : st_.global_step;
  json r;
  r["complete"] = !result_.stopped;
  r["steps"] = st_.global_step;
  r["total_steps"] = st_.total_steps;
  r["train"] = {{"tokens", st_.tokens_seen},
                {"seconds", st_.train_seconds},
                {"tokens_per_s", st_.train_seconds > 0 ? st_.tokens_seen / st_.train_seconds : 0}};
  if (has_dev_) {
    if (!last_score_ || st_.last_eval_step != st_.global_step) last_score_ = evaluate();
    const DevScore& s = *last_score_;
    // A run stopped before its first evaluation point has no best checkpoint yet.
    const bool evaluated = st_.best_step >= 0;
    if (evaluated) result_.best_accuracy = st_.best_accuracy;
    result_.last_accuracy = s.accuracy;
    eval::LanguageResult lr = eval::compute_language_result(dev_.lang, s.predictions.gold,
                                                            s.predictions.pred, {1000, c_.seed});
    r["best"] = evaluated ? json{{"step", st_.best_step},
                                 {"dev_accuracy", st_.best_accuracy},
                                 {"dev_macro_f1", st_.best_macro_f1}}
                          : json(nullptr);
    r["last"] = {{"step", st_.global_step}, {"dev", eval::language_result_to_json(lr)}};
    r["dev_source"] = dev_.source;
  } else {
    r["best"] = {{"step", st_.global_step}, {"note", "no --dev set: best/ is the last model"}};
    r["last"] = {{"step", st_.global_step}};
  }
  if (writer_) write_file_atomic(out_ / "results.json", r.dump(2) + "\n");
  if (group_) group_->barrier();
}

FinetuneResult Trainer::run() {
  validate(c_);
  group_ = distributed::init(distributed::launch_env_from_process(),
                             {std::chrono::seconds(c_.dist_timeout), c_.device});
  writer_ = group_ == nullptr || group_->rank() == 0;
  if (c_.bf16) detail::Bf16Autocast check(true, models::parse_device(c_.device));
  prepare_output();
  try {
    if (writer_ && !c_.profile.dir.empty()) {
      auto po = c_.profile;
      po.device = models::parse_device(c_.device);
      profiler_ = std::make_unique<models::StepProfiler>(po);
    }
    load_data();
    load_model();
    detail::check_labels(train_, "--train", static_cast<int>(model_->num_labels()));
    plan();
  } catch (...) {
    // Bad input found before training: a folder this run made holds only its lock file, and
    // goes again (an existing folder stays as it was).
    if (created_out_) {
      lock_.reset();
      std::error_code ec;
      fs::remove(out_ / detail::kFinetuneLock, ec);
      if (fs::is_empty(out_, ec)) fs::remove(out_, ec);
    }
    throw;
  }
  clear_earlier_run();
  if (writer_) {
    write_train_config();
    log_ = std::make_unique<LogWriter>(out_ / "log.jsonl", st_.global_step, !c_.resume);
  }
  // From here a first SIGINT/SIGTERM stops after the current step with a saved state. (The scope
  // forgets an earlier run's request unless a study's scope holds it: then a Ctrl-C during this
  // unit's set-up stops it at its first step.)
  InterruptScope interrupts;
  train_loop();
  if (profiler_ && !profiler_->finished())
    std::cerr << "xlt finetune: " << profiler_->unfinished_note() << "\n";
  profiler_.reset();
  finish();
  return result_;
}

}  // namespace

FinetuneResult finetune(const FinetuneConfig& config) {
  Trainer trainer(config);
  return trainer.run();
}

}  // namespace xlt::train
