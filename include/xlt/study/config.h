// The configuration of an `xlt study` (a TOML file; every key, its default and meaning are in
// docs/study.md). Parsing is strict and happens before any work starts: an unknown key, a value
// of the wrong type or out of range, or a file that does not exist throws ConfigError naming the
// key (with the file and line, from toml++'s source regions) or the file. Relative paths resolve
// against the folder of the config file.
//
// Usage:
//   xlt::study::StudyConfig c = xlt::study::load_study_config("examples/demo.toml");
//   c.languages, c.encoder.model, c.train.epochs, ...
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace xlt::study {

// The stages in the order they run. A stage with several seeds runs one unit per seed.
inline constexpr const char* kStageNames[] = {"baseline",  "finetune",   "zero_shot", "analysis",
                                              "attention", "perplexity", "report"};
const std::vector<std::string>& stage_names();
bool is_stage_name(std::string_view name);
// "cpu", "cuda" or "cuda:N": the spelling of a device, checked without libtorch (whether it is
// there is models::parse_device's business).
bool is_device_name(std::string_view device);

// A model the study uses: a pretrained checkpoint (local folder or Hugging Face id), or a
// randomly initialised one built from `init` (a config.json) with `tokenizer`'s files.
struct ModelSpec {
  bool enabled = true;
  std::string model;                // folder path (resolved) or hub id, as used
  bool model_is_path = false;       // `model` named an existing local path
  std::filesystem::path init;       // config.json for random init; empty = pretrained
  std::filesystem::path tokenizer;  // tokenizer folder/file; empty = the model folder
  uint64_t init_seed = 42;
  int line = 0;  // config line of the section (for messages)

  bool randomly_initialized() const { return !init.empty(); }
};

// One encoder of the study. A single `[encoder]` table gives one entry with an empty name (the
// study's folders and results.json keep the one-encoder layout); `[encoders.NAME]` tables give
// one entry each, sorted by name, whose units live under DIR/encoders/NAME/.
struct EncoderEntry {
  std::string name;
  ModelSpec spec;
};

struct TrainSettings {
  std::string data = "multinli:split=train";  // dataset spec ("multinli:...") or a file
  std::string dev;                            // optional English dev set (model selection)
  std::string format = "auto";
  int64_t samples = 5000;  // 0 = all
  // Seed of that subset; unset = each run's own seed (the seed of the fine-tuning run).
  std::optional<uint64_t> sample_seed;
  std::string sampling = "xlt";  // "xlt" or "numpy" (data::Sampling)
  int64_t epochs = 3;
  double learning_rate = 2e-5;
  int64_t batch_size = 32;
  // > 0: token-budget micro-batches (global, split over the ranks) instead of batch_size rows.
  int64_t max_tokens = 0;
  int64_t grad_accum = 1;
  int64_t max_length = 128;
  double warmup_ratio = 0.0;
  double weight_decay = 0.01;
  double max_grad_norm = 1.0;
  int64_t save_every = 500;  // resumable-state interval in optimizer steps
  bool bf16 = false;         // bf16 autocast for fine-tuning (a GPU: study.device or --device)
};

struct EvalSettings {
  // Either `data` (a dataset spec such as "xnli:split=test", or a file with a language column)
  // or `files` (language -> file, e.g. XTREME-layout dev-es.tsv).
  std::string data = "xnli:split=test";
  std::map<std::string, std::string> files;
  std::string format = "auto";
  int64_t samples = 1000;  // per language; 0 = all
  uint64_t sample_seed = 42;
  std::string sampling = "xlt";  // "xlt" or "numpy" (data::Sampling)
  int64_t batch_size = 64;
  int64_t max_tokens = 0;  // > 0: also cap each batch at this many padded tokens
  int64_t max_length = 128;
  int bootstrap_resamples = 1000;
};

struct AnalysisSettings {
  // Parallel sentences for the t-SNE map: language -> sentences (row i parallel across languages).
  std::map<std::string, std::vector<std::string>> sentences;
  std::filesystem::path parallel_file;  // optional TSV (header: language codes) for alignment
  int64_t max_parallel = 1000;          // rows of parallel_file used
  std::string pooling = "mean";         // "mean" (non-special tokens) or "cls"
  int layer = -1;                       // -1 = last layer; 0 = embeddings
  double tsne_perplexity = 30.0;        // scikit-learn's rule: < n (lowered to n - 1 otherwise)
  int tsne_iterations = 1000;
  std::optional<uint64_t> tsne_seed;  // unset = the study's first seed
  int64_t batch_size = 32;
};

struct AttentionSettings {
  std::vector<std::string> sentences = {"The black cat sat down.", "El gato negro se sent\u00f3."};
  std::vector<std::string> languages = {"en", "es"};
  int layer = 12;                   // 1-based transformer layer
  std::string model = "causal_lm";  // "causal_lm" or "encoder"
};

struct PerplexitySettings {
  // Language -> plain-text file (one sentence or paragraph per line). Empty = the unique premises
  // of the evaluation sample of each language.
  std::map<std::string, std::filesystem::path> texts;
  int64_t max_lines = 1000;
  int64_t max_length = 512;  // window; clamped to the model's max_position_embeddings
  int64_t stride = 0;        // 0 = max_length / 2
  int64_t batch_size = 8;
};

struct DistanceSettings {
  std::string measure = "syntactic";  // column of the distance table
  std::filesystem::path file;         // empty = xlt's built-in table (data/linguistic_distance.tsv)
};

struct StudyConfig {
  std::filesystem::path config_file;  // absolute
  // "analysis.layer" -> its line in config_file, for checks made after reading (against a
  // model's config): where(key) is "FILE:LINE: key" (or "FILE: key" for a default).
  std::map<std::string, int> key_lines;
  std::string where(const std::string& key) const;
  std::filesystem::path base_dir;  // its folder
  std::string title;
  std::vector<std::string> languages = {"en", "es", "fr", "hi"};
  std::string source_lang = "en";
  std::vector<uint64_t> seeds = {42};
  std::vector<std::string> stages;  // enabled stages, in kStageNames order
  std::string device = "cpu";
  int threads = 0;
  std::filesystem::path out;  // empty = runs/<config stem> under the working directory

  ModelSpec encoder;                   // the only or the first encoder
  std::vector<EncoderEntry> encoders;  // every encoder (one unnamed entry for `[encoder]`)
  ModelSpec causal_lm;
  TrainSettings train;
  EvalSettings eval;
  AnalysisSettings analysis;
  AttentionSettings attention;
  PerplexitySettings perplexity;
  DistanceSettings distance;

  bool stage_enabled(std::string_view stage) const;
  // Several encoders (`[encoders.NAME]`): units and results are kept per encoder.
  bool multi_encoder() const { return !encoders.empty() && !encoders.front().name.empty(); }
  // The resolved configuration (every key, defaults included), for results.json and reports.
  nlohmann::json to_json() const;
};

// The original study's parallel sentences (en, es, fr, hi): the default analysis.sentences.
std::map<std::string, std::vector<std::string>> default_parallel_sentences();

// Reads and validates a study config. Throws ConfigError ("FILE:LINE: KEY: what was expected")
// or IoError for an unreadable file.
StudyConfig load_study_config(const std::filesystem::path& path);
// The same from text; `path` names the file in messages and anchors relative paths.
StudyConfig parse_study_config(std::string_view toml_text, const std::filesystem::path& path);

}  // namespace xlt::study
