// Shared helpers of the analysis subcommands (see analysis_common.h).
#include "analysis_common.h"

#include <cstdio>
#include <iostream>

#include "xlt/core/error.h"
#include "xlt/io/hub_cache.h"

namespace xlt::cli {

namespace fs = std::filesystem;

LoadedModel load_analysis_model(const std::string& spec, const std::string& tokenizer,
                                const std::string& device, const std::string& dtype,
                                const std::string& command) {
  LoadedModel m;
  const io::ModelLocation loc = io::resolve_model_location(spec);
  m.path = loc.path;
  models::LoadOptions lo;
  lo.device = models::parse_device(device);
  lo.dtype = models::parse_dtype(dtype);
  m.model = models::load_model(loc.path, lo);
  std::cerr << "xlt " << command << ": " << m.model->load_report().summary() << "\n";
  const fs::path dir = fs::is_directory(loc.path) ? loc.path : loc.path.parent_path();
  const fs::path tok_path = tokenizer.empty() ? dir : fs::path(tokenizer);
  m.tokenizer = text::load_tokenizer(tok_path);
  models::check_tokenizer_fits(m.tokenizer->vocab_size(), *m.model, tok_path);
  return m;
}

void add_embedding_options(CLI::App& sub, EmbeddingCliOptions& o, const std::string& layer_names,
                           const std::string& layer_help) {
  sub.add_option(layer_names, o.layers, layer_help)->capture_default_str();
  sub.add_option("--pool", o.pool, "Pooling: cls (first token) or mean")
      ->check(CLI::IsMember({"cls", "mean"}))
      ->capture_default_str();
  sub.add_option("--special", o.special,
                 "Special tokens in mean pooling: exclude, keep or mark (= keep); padding never")
      ->check(CLI::IsMember({"keep", "mark", "exclude"}))
      ->capture_default_str();
  sub.add_option("--batch-size", o.batch_size, "Sentences per forward pass")
      ->check(positive())
      ->capture_default_str();
  sub.add_option("--max-length", o.max_length, "Tokens per sentence (special tokens included)")
      ->check(positive())
      ->capture_default_str();
  sub.add_option("--tokenizer", o.tokenizer, "Tokenizer folder/file (default: the model's)");
  sub.add_option("--dtype", o.dtype, "float32 or bfloat16")->capture_default_str();
  sub.add_flag("--no-progress,--quiet", o.no_progress, "No progress bar");
}

int64_t capped_max_length(const models::Model& model, int64_t requested,
                          const std::string& command) {
  const int64_t used = analysis::effective_max_length(model, requested);
  if (used < requested) {
    std::fprintf(stderr,
                 "xlt %s: --max-length %lld is more than the model's positions cover; sentences "
                 "are truncated to %lld tokens\n",
                 command.c_str(), static_cast<long long>(requested), static_cast<long long>(used));
  }
  return used;
}

analysis::EmbeddingOptions to_embedding_options(const EmbeddingCliOptions& o,
                                                const models::Model& model,
                                                const std::string& command) {
  analysis::EmbeddingOptions eo;
  eo.layers =
      analysis::parse_layers(o.layers, static_cast<int>(model.config().num_hidden_layers), 0);
  eo.pooling = analysis::parse_pooling(o.pool);
  eo.special = analysis::parse_special_policy(o.special);
  eo.batch_size = o.batch_size;
  eo.max_length = capped_max_length(model, o.max_length, command);
  eo.progress = !o.no_progress;
  return eo;
}

std::vector<std::string> split_labels(const std::string& value, const std::string& flag) {
  std::vector<std::string> out;
  if (value.empty()) return out;
  size_t start = 0;
  for (;;) {
    const size_t comma = value.find(',', start);
    out.push_back(value.substr(start, comma == std::string::npos ? comma : comma - start));
    if (out.back().empty()) {
      throw UsageError(flag + " '" + value + "': empty item (expected a comma-separated list)");
    }
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

std::string tsv_field(const std::string& value) {
  std::string s = value;
  for (char& c : s) {
    if (c == '\t' || c == '\n' || c == '\r') c = ' ';
  }
  return s;
}

}  // namespace xlt::cli
