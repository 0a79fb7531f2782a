// Private pieces of the study runner shared by its files: content digests and fingerprints,
// the resolved models and units of a plan, the run context, and the stage entry points.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "xlt/data/nli.h"
#include "xlt/io/config.h"
#include "xlt/study/config.h"

namespace xlt::models {
class Model;
}
namespace xlt::distributed {
class Group;
}
namespace xlt::text {
class Tokenizer;
}

namespace xlt::study::detail {

namespace fs = std::filesystem;
using nlohmann::json;

inline constexpr int kNliLabels = 3;

// ----- digests (fingerprint.cpp) ------------------------------------------------------------

// SHA-256 of `data`, as 64 lower-case hex digits.
std::string sha256_hex(std::string_view data);
// {"bytes", "method", "sha256"}: the whole file's SHA-256 ("full"), or for a Hugging Face cache
// link to blobs/<sha256> that name ("hf-blob-name"; the download verified it).
json file_digest(const fs::path& path);
// Every regular file under a folder (symlinks followed), by relative name; a file as file_digest.
json tree_digest(const fs::path& path);
// Only the tokenizer files of a folder (vocab.txt, tokenizer.json, *.model, ...), so that other
// files sharing the folder (demo data) do not count.
json tokenizer_digest(const fs::path& path);
// A dataset spec ("xnli:...") or file, by the content of the files it names.
json data_digest(const std::string& spec_or_path);
// Fingerprint of a unit's inputs: SHA-256 of the canonical (sorted-key) JSON dump.
std::string fingerprint_of(const json& inputs);
// Whether a recorded fingerprint comes from an xlt before SHA-256 digests (FNV-1a 64): such a
// unit re-runs once, and the runner says why (docs/study.md, "Fingerprints").
bool is_legacy_fingerprint(const json& fingerprint);
// Dotted keys (two levels deep) whose values differ between two inputs objects.
std::vector<std::string> changed_keys(const json& before, const json& after);

// ----- models and units -----------------------------------------------------------------

struct ResolvedModel {
  std::string role;    // "encoder" / "causal_lm"
  std::string name;    // as configured (hub id, path or "random <config>")
  fs::path dir;        // folder to load from (random: DIR/init/<role>/model, made by its unit)
  fs::path tokenizer;  // tokenizer folder or file
  bool random = false;
  bool available = true;  // false in a dry run when a hub model is not cached yet
  std::string init_unit;  // "init/<role>" when random
  json identity;          // what downstream fingerprints use (digests or the init fingerprint)
  json tokenizer_identity;
  io::ModelConfig config;  // config.json (for layer counts), or the init config
};

struct Unit {
  std::string name;   // "baseline/seed-42"
  std::string stage;  // "init", "baseline", ...
  uint64_t seed = 0;
  std::string role;  // init units: which model
  int encoder = -1;  // index into Context::encoders for per-encoder units, else -1
  json inputs;
  std::string fingerprint;
  std::vector<std::string> needs;  // units whose outputs this one reads
  fs::path dir;                    // DIR/<name>
};

// Reads DIR/<unit>/stage.json; nullopt when absent or unreadable (an incomplete unit).
std::optional<json> read_stage_record(const fs::path& unit_dir);

struct Context {
  Context(const StudyConfig& c, fs::path out_dir) : config(c), out(std::move(out_dir)) {}

  const StudyConfig& config;
  fs::path out;
  bool progress = true;
  std::ostream* log = nullptr;
  std::string device = "cpu";
  int threads = 1;
  int dist_timeout = 300;
  // Every encoder of the study; `encoder` and `prefix` are those of the unit being run (the run
  // loop selects them): prefix is "" with one encoder, else "encoders/NAME/".
  std::vector<ResolvedModel> encoders;
  ResolvedModel encoder, causal_lm;
  std::string prefix;
  void select_encoder(int index);
  fs::path encoder_out() const { return out / prefix; }  // DIR or DIR/encoders/NAME
  std::vector<Unit> units;                               // in run order
  std::map<std::string, std::string> status;  // unit -> "ran" / "skipped" (this invocation)
  // Units not rerun (not in --stages / study.stages) whose finished outputs were made from other
  // inputs than the config's now.
  std::vector<std::string> stale;
  // Under a distributed launch (xlt launch, torchrun, srun): the evaluation stages are sharded
  // over the ranks and fine-tuning is data-parallel; rank 0 alone writes files and runs the other
  // stages. nullptr = one process.
  distributed::Group* group = nullptr;
  bool writer() const;  // rank 0, or one process
  int world() const;    // number of ranks (1 alone)
  // Every rank has got here (nothing alone). Without the collective timeout: rank 0 may have run
  // a long stage alone; a rank that dies meanwhile is still noticed.
  void sync(const std::string& what) const;

  const Unit& unit(const std::string& name) const;
  // The evaluation datasets (read and subsampled once per run).
  const std::vector<data::NliDataset>& eval_sets();

 private:
  std::optional<std::vector<data::NliDataset>> eval_sets_;
};

// Resolves the models (downloads a hub model unless dry_run) and checks layer indices against
// their configs. Throws ConfigError naming the key.
// `prefix`: where the model's init unit lives ("" or "encoders/NAME/").
ResolvedModel resolve_model(const StudyConfig& config, const ModelSpec& spec,
                            const std::string& role, const fs::path& out, bool dry_run,
                            const std::string& prefix = "");
// ConfigError at `key`.tokenizer (FILE:LINE) when the model's tokenizer has more tokens than its
// vocab_size (another model's tokenizer), before any unit runs; a model not available yet (dry
// run, not downloaded) is skipped.
void check_tokenizer_fits(const StudyConfig& config, const ResolvedModel& model,
                          const std::string& key);
void check_model_settings(const StudyConfig& config, const ResolvedModel& encoder,
                          const ResolvedModel& causal_lm, const std::string& key = "encoder");
// "" for the one-encoder layout, else "encoders/NAME/": where an encoder's units live.
std::string encoder_prefix(const StudyConfig& config, size_t index);
// Every unit of the configured stages with its inputs and fingerprint, in run order.
std::vector<Unit> build_units(const StudyConfig& config, const std::vector<ResolvedModel>& encoders,
                              const ResolvedModel& causal_lm, const fs::path& out);
// Whether the analysis uses the evaluation rows as its parallel set (no analysis.parallel_file
// and evaluation data are configured and readable).
bool analysis_uses_eval_rows(const StudyConfig& config);

// Loads the tokenizer / a model of the study on the context's device.
std::unique_ptr<text::Tokenizer> load_study_tokenizer(const fs::path& path);
std::unique_ptr<models::Model> load_classifier(Context& ctx, const fs::path& dir, uint64_t seed,
                                               bool new_head);
std::unique_ptr<models::Model> load_causal_lm(Context& ctx);
json model_info(const models::Model& model, const ResolvedModel& spec);

// ----- stages (each returns the summary recorded in stage.json) ---------------------------

// Thrown by run_finetune when SIGINT/SIGTERM stopped the fine-tuning at a safe point: its state
// is saved and the unit is not complete, so the study stops there (run_study catches it).
struct UnitInterrupted {
  int signal;
  int64_t steps;
  int64_t total_steps;
};

json run_init(Context& ctx, const Unit& unit);
json run_baseline(Context& ctx, const Unit& unit);
json run_finetune(Context& ctx, const Unit& unit, bool resume);
json run_zero_shot(Context& ctx, const Unit& unit);
json run_analysis(Context& ctx, const Unit& unit);
// The analysis' parallel file and the perplexity texts, read and checked before any unit runs
// (DataError/IoError naming FILE:LINE), so that a bad file does not fail a study after its
// fine-tuning.
void check_analysis_inputs(const Context& ctx);
void check_perplexity_inputs(const Context& ctx);
json run_attention(Context& ctx, const Unit& unit);
json run_perplexity(Context& ctx, const Unit& unit);
json run_report(Context& ctx, const Unit& unit);

// Helpers for stages.
std::string seed_unit(const std::string& stage, uint64_t seed);  // "finetune/seed-42"
fs::path finetuned_model_dir(const fs::path& out, uint64_t seed);
std::string iso_time_now();
void write_json(const fs::path& path, const json& j);

}  // namespace xlt::study::detail
