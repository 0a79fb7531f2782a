// What `xlt embed`, `xlt align` and `xlt attention` share: loading a model with its tokenizer
// from a folder or hub id, the sentence-embedding options of embed and align, label lists, and
// output-folder creation.
#pragma once

#include <CLI/CLI.hpp>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "command.h"
#include "xlt/analysis/embeddings.h"
#include "xlt/models/model.h"
#include "xlt/text/tokenizer.h"

namespace xlt::cli {

struct LoadedModel {
  std::unique_ptr<models::Model> model;
  std::unique_ptr<text::Tokenizer> tokenizer;
  std::filesystem::path path;  // resolved model folder
};

// Resolves `spec` (folder or cached hub id), loads the model on `device` in `dtype` and the
// tokenizer from the same folder (or `tokenizer` when given). Logs the load report to stderr.
LoadedModel load_analysis_model(const std::string& spec, const std::string& tokenizer,
                                const std::string& device, const std::string& dtype,
                                const std::string& command);

// The sentence-embedding options of `xlt embed` and `xlt align`, registered and converted in one
// place so that the two commands cannot drift apart. Only the layer option differs per command
// (its names, default and help), so the caller sets `layers` to its default first.
struct EmbeddingCliOptions {
  std::string layers;
  std::string pool = "mean", special = "exclude", tokenizer, dtype = "float32";
  int64_t batch_size = 32, max_length = 128;
  bool no_progress = false;
};

// Adds the layer option (`layer_names`, e.g. "--layers,--layer") and --pool, --special,
// --batch-size, --max-length, --tokenizer, --dtype, --no-progress.
void add_embedding_options(CLI::App& sub, EmbeddingCliOptions& o, const std::string& layer_names,
                           const std::string& layer_help);

// The library options for `model` (hidden_states 0..L); max_length capped at what the model's
// positions cover (capped_max_length).
analysis::EmbeddingOptions to_embedding_options(const EmbeddingCliOptions& o,
                                                const models::Model& model,
                                                const std::string& command);

// --max-length, or less when the model's positions cover fewer tokens (then a note on stderr
// says so): sentences are truncated to what the model can take instead of a long one stopping
// the run in the forward pass. The value the outputs record.
int64_t capped_max_length(const models::Model& model, int64_t requested,
                          const std::string& command);

// A comma-separated list of labels, one per item of something else (`xlt attention --langs`: the
// language of each sentence). Unlike data::parse_lang_list, which rejects duplicates because a
// language selects data, a label may repeat: two sentences of one language are a fair
// comparison. An empty value gives no labels; an empty item is a UsageError naming `flag`.
std::vector<std::string> split_labels(const std::string& value, const std::string& flag);

// `value` with tabs, CR and LF replaced by spaces (for one TSV field).
std::string tsv_field(const std::string& value);

}  // namespace xlt::cli
