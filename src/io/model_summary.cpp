// Model summaries for `xlt inspect`: config + checkpoint headers, parameter counts per dtype.
#include "xlt/io/model_summary.h"

#include <algorithm>
#include <set>

#include "core/strings.h"
#include "io/tied_names.h"
#include "xlt/core/error.h"

namespace xlt::io {
using xlt::detail::ends_with;
namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

namespace {

bool is_floating(DType d) {
  return d == DType::F64 || d == DType::F32 || d == DType::F16 || d == DType::BF16;
}

Json shape_json(const std::vector<int64_t>& shape) {
  Json a = Json::array();
  for (int64_t d : shape) a.push_back(d);
  return a;
}

}  // namespace

bool is_embedding_tensor(const std::string& name) {
  for (const char* suffix : {"word_embeddings.weight", "position_embeddings.weight",
                             "token_type_embeddings.weight", "embed_tokens.weight"})
    if (ends_with(name, suffix)) return true;
  return false;
}

ModelSummary summarize_model(const ModelLocation& location) {
  ModelSummary s;
  s.location = location;
  const fs::path& p = location.path;
  if (!fs::is_directory(p) && p.filename() == "config.json") {
    // Not a shard index, whatever its extension says.
    throw UsageError(p.string() + " is a model's config.json: give the model folder (" +
                     p.parent_path().string() + ") or a weights file");
  }
  fs::path config_path = fs::is_directory(p) ? p / "config.json" : p.parent_path() / "config.json";
  if (fs::is_directory(p) || fs::exists(config_path)) s.config = ModelConfig::load(config_path);

  Checkpoint ck = Checkpoint::open(p);
  for (const auto& f : ck.files()) {
    s.files.push_back({f->path(), f->file_size(), f->names().size()});
    s.total_bytes += f->file_size();
    for (const std::string& name : f->names()) {
      const TensorView& v = f->tensor(name);
      s.tensors.push_back({name, v.dtype, v.shape, v.numel(), f->path().filename().string(),
                           is_embedding_tensor(name), ""});
    }
  }
  std::sort(s.tensors.begin(), s.tensors.end(),
            [](const TensorSummary& a, const TensorSummary& b) { return a.name < b.name; });
  // Counted as Hugging Face's num_parameters() counts: integer tensors are buffers
  // (position_ids), and an output projection tied to the input embeddings
  // (tie_word_embeddings, true unless the config says otherwise) is the same parameter.
  const bool tied = !s.config || s.config->tie_word_embeddings;
  std::vector<std::vector<int64_t>> input_embeddings;
  std::set<std::string> names;
  for (const TensorSummary& t : s.tensors) {
    names.insert(t.name);
    if (ends_with(t.name, "word_embeddings.weight") || ends_with(t.name, "embed_tokens.weight"))
      input_embeddings.push_back(t.shape);
  }
  for (TensorSummary& t : s.tensors) {
    // The MLM heads' decoders: BERT's cls.predictions.decoder, (XLM-)RoBERTa's lm_head.decoder,
    // XGLM's lm_head; their biases are the head's own bias (predictions.bias, lm_head.bias).
    const bool output_projection = detail::is_output_projection(t.name);
    const bool decoder_bias = detail::is_decoder_bias(t.name);
    if (!is_floating(t.dtype)) {
      t.role = "buffer";
    } else if (tied && output_projection &&
               std::find(input_embeddings.begin(), input_embeddings.end(), t.shape) !=
                   input_embeddings.end()) {
      t.role = "tied";
    } else if (decoder_bias &&
               names.count(t.name.substr(0, t.name.size() - std::string("decoder.bias").size()) +
                           "bias")) {
      t.role = "tied";
    }
    if (!t.role.empty()) continue;
    s.num_parameters += t.numel;
    if (!t.embedding) s.num_parameters_without_embeddings += t.numel;
    s.dtype_parameters[std::string(dtype_name(t.dtype))] += t.numel;
  }
  return s;
}

ModelSummary summarize_model(const fs::path& path) {
  ModelLocation loc;
  loc.path = path;
  return summarize_model(loc);
}

Json ModelSummary::to_json(bool with_tensors) const {
  Json j;
  j["path"] = location.path.string();
  j["source"] = location.from_hub_cache ? "hf-cache" : "local";
  if (location.from_hub_cache) {
    j["repo_id"] = location.repo_id;
    j["revision"] = location.revision;
    j["commit"] = location.commit;
  }
  const ModelConfig* c = config ? &*config : nullptr;
  auto or_null = [c](auto get) { return c ? Json(get(*c)) : Json(nullptr); };
  j["model_type"] = or_null([](const ModelConfig& m) { return model_type_name(m.model_type); });
  j["architectures"] = c ? Json(c->architectures) : Json(nullptr);
  j["num_parameters"] = num_parameters;
  j["num_parameters_without_embeddings"] = num_parameters_without_embeddings;
  j["num_layers"] = or_null([](const ModelConfig& m) { return m.num_hidden_layers; });
  j["hidden_size"] = or_null([](const ModelConfig& m) { return m.hidden_size; });
  j["num_heads"] = or_null([](const ModelConfig& m) { return m.num_attention_heads; });
  j["intermediate_size"] = or_null([](const ModelConfig& m) { return m.intermediate_size; });
  j["vocab_size"] = or_null([](const ModelConfig& m) { return m.vocab_size; });
  j["max_position_embeddings"] =
      or_null([](const ModelConfig& m) { return m.max_position_embeddings; });
  j["num_labels"] = or_null([](const ModelConfig& m) { return m.num_labels; });
  j["torch_dtype"] =
      c && c->raw.contains("torch_dtype") ? Json(c->raw["torch_dtype"]) : Json(nullptr);
  Json dtypes = Json::object();
  for (const auto& [name, n] : dtype_parameters) dtypes[name] = n;
  j["dtypes"] = dtypes;
  j["num_tensors"] = tensors.size();
  j["total_bytes"] = total_bytes;
  Json fs_json = Json::array();
  for (const FileSummary& f : files)
    fs_json.push_back({{"path", f.path.string()}, {"bytes", f.bytes}, {"tensors", f.tensors}});
  j["files"] = fs_json;
  if (with_tensors) {
    Json ts = Json::array();
    for (const TensorSummary& t : tensors)
      ts.push_back({{"name", t.name},
                    {"dtype", std::string(dtype_name(t.dtype))},
                    {"shape", shape_json(t.shape)},
                    {"file", t.file}});
    for (size_t i = 0; i < tensors.size(); ++i) {
      if (!tensors[i].role.empty()) ts[i]["not_counted"] = tensors[i].role;
    }
    j["tensors"] = ts;
  }
  return j;
}

}  // namespace xlt::io
