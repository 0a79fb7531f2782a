// `xlt inspect MODEL [--json] [--tensors]`: what a checkpoint holds (architecture, sizes,
// parameter counts, dtypes, files, tensors) from its config.json and safetensors headers alone,
// so it is instant even for multi-GB models and needs no libtorch.
#include <iomanip>
#include <iostream>
#include <sstream>

#include "command.h"
#include "xlt/io/hub_cache.h"
#include "xlt/io/model_summary.h"

namespace xlt::cli {
namespace {

struct InspectOptions {
  std::string model;
  bool json = false;
  bool tensors = false;
};

// 1234567 -> "1,234,567": parameter counts are read by people.
std::string grouped(int64_t n) {
  std::string digits = std::to_string(n < 0 ? -n : n), out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return n < 0 ? "-" + out : out;
}

std::string human_bytes(std::uint64_t b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(b);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  std::ostringstream s;
  s << std::fixed << std::setprecision(u == 0 ? 0 : 1) << v << " " << units[u];
  return s.str();
}

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

void print_human(const io::ModelSummary& s, bool with_tensors, std::ostream& out) {
  auto row = [&out](const std::string& label, const std::string& value) {
    out << std::left << std::setw(18) << label << value << "\n";
  };
  std::string where = s.location.path.string();
  if (s.location.from_hub_cache)
    where = s.location.repo_id + "@" + s.location.revision + " (" +
            s.location.commit.substr(0, 12) + ", " + where + ")";
  row("Model", where);
  if (s.config) {
    const io::ModelConfig& c = *s.config;
    std::string archs;
    for (const auto& a : c.architectures) archs += (archs.empty() ? "" : ", ") + a;
    row("Model type", io::model_type_name(c.model_type));
    row("Architectures", archs.empty() ? "-" : archs);
  } else {
    row("Model type", "- (no config.json)");
  }
  row("Parameters", grouped(s.num_parameters) + " (without embeddings: " +
                        grouped(s.num_parameters_without_embeddings) + ")");
  if (s.config) {
    const io::ModelConfig& c = *s.config;
    row("Layers", std::to_string(c.num_hidden_layers));
    row("Hidden size", std::to_string(c.hidden_size));
    row("Attention heads",
        std::to_string(c.num_attention_heads) + " (head dim " + std::to_string(c.head_dim()) + ")");
    row("FFN size", std::to_string(c.intermediate_size));
    row("Vocab size", grouped(c.vocab_size));
    row("Max positions", grouped(c.max_position_embeddings));
    if (c.raw.contains("id2label")) {
      std::string labels;
      for (const auto& [id, name] : c.id2label) labels += (labels.empty() ? "" : ", ") + name;
      row("Labels", std::to_string(c.num_labels) + " (" + labels + ")");
    }
  }
  std::string dtypes;
  for (const auto& [name, n] : s.dtype_parameters)
    dtypes += (dtypes.empty() ? "" : ", ") + name + " (" + grouped(n) + " params)";
  row("Dtypes", dtypes.empty() ? "-" : dtypes);
  row("Tensors", std::to_string(s.tensors.size()));
  bool first = true;
  for (const io::FileSummary& f : s.files) {
    row(first ? "Files" : "", f.path.filename().string() + "  " + grouped(f.bytes) + " bytes (" +
                                  human_bytes(f.bytes) + ", " + std::to_string(f.tensors) +
                                  " tensors)");
    first = false;
  }
  if (s.files.size() > 1) row("", "total " + grouped(s.total_bytes) + " bytes");

  if (with_tensors) {
    std::size_t name_w = 4, dtype_w = 5, shape_w = 5;
    for (const auto& t : s.tensors) {
      name_w = std::max(name_w, t.name.size());
      shape_w = std::max(shape_w, shape_str(t.shape).size());
    }
    const bool sharded = s.files.size() > 1;
    out << "\n"
        << std::left << std::setw(name_w + 2) << "name" << std::setw(dtype_w + 2) << "dtype"
        << std::setw(shape_w + 2) << "shape" << std::right << std::setw(12) << "numel"
        << (sharded ? "  file" : "") << "\n";
    for (const auto& t : s.tensors) {
      out << std::left << std::setw(name_w + 2) << t.name << std::setw(dtype_w + 2)
          << io::dtype_name(t.dtype) << std::setw(shape_w + 2) << shape_str(t.shape) << std::right
          << std::setw(12) << grouped(t.numel) << (sharded ? "  " + t.file : "") << "\n";
    }
  }
}

Runner configure(CLI::App& sub) {
  auto opts = std::make_shared<InspectOptions>();
  sub.add_option("model", opts->model,
                 "Model folder, .safetensors file, or Hugging Face id (org/name[@revision]) in "
                 "the local HF cache")
      ->required();
  sub.add_flag("--json", opts->json, "Print one JSON object instead of a table");
  sub.add_flag("--tensors", opts->tensors, "List every tensor's name, dtype and shape");
  return [opts]() {
    io::ModelSummary s = io::summarize_model(io::resolve_model_location(opts->model));
    if (opts->json) {
      std::cout << s.to_json(opts->tensors).dump(2) << "\n";
    } else {
      print_human(s, opts->tensors, std::cout);
    }
    return 0;
  };
}

}  // namespace

XLT_REGISTER_COMMAND("inspect",
                     "Show a checkpoint's architecture, sizes, parameter counts, dtypes and "
                     "tensors (no weights loaded)",
                     10, configure);

}  // namespace xlt::cli
