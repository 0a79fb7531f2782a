// `xlt convert MODEL --to safetensors --out DIR`: rewrites a PyTorch checkpoint
// (pytorch_model.bin, sharded or not) as safetensors without Python, keeping every tensor's
// dtype and copying the config and tokenizer files. The pickle is read by a restricted
// unpickler: a file that asks for anything torch.save does not write for a state dict is
// refused (exit 2) with the name of what it asked for.
#include <iostream>

#include "command.h"
#include "xlt/core/error.h"
#include "xlt/core/progress.h"
#include "xlt/io/convert.h"
#include "xlt/io/hub.h"

namespace xlt::cli {
namespace {

struct ConvertCliOptions {
  std::string model, to = "safetensors", out;
  double max_shard_gb = 5;
  bool quiet = false;
};

int run(const ConvertCliOptions& o) {
  if (o.to != "safetensors")
    throw UsageError("--to: only 'safetensors' is supported, got '" + o.to + "'");
  if (o.max_shard_gb <= 0) throw UsageError("--max-shard-size: expected a positive number of GB");
  io::HubOptions hub = io::HubOptions::from_env();
  hub.progress = !o.quiet;
  // From the hub: the pickle weights and what a model folder needs beside them, not the
  // default selection, which takes model.safetensors where a repository has both.
  io::ModelLocation loc = io::resolve_or_download(
      o.model, hub,
      {"config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
       "special_tokens_map.json", "added_tokens.json", "vocab.txt", "vocab.json", "merges.txt",
       "*.model", "pytorch_model.bin", "pytorch_model-*.bin", "pytorch_model.bin.index.json"});
  io::ConvertOptions opts;
  opts.max_shard_bytes = static_cast<uint64_t>(o.max_shard_gb * 1e9);
  opts.progress = !o.quiet;
  io::ConvertResult r = io::convert_to_safetensors(loc.path, o.out, opts);
  if (!o.quiet) {
    std::cerr << "xlt convert: " << r.tensors << " tensors (";
    bool first = true;
    for (const auto& [dtype, n] : r.dtypes) {
      std::cerr << (first ? "" : ", ") << n << " " << dtype;
      first = false;
    }
    std::cerr << "), " << Progress::human_bytes(static_cast<double>(r.bytes)) << " -> ";
    for (std::size_t i = 0; i < r.weight_files.size(); ++i)
      std::cerr << (i ? ", " : "") << r.weight_files[i];
    std::cerr << "; copied";
    for (const auto& f : r.copied) std::cerr << " " << f;
    std::cerr << (r.copied.empty() ? " nothing" : "");
    if (!r.tied.empty()) {
      std::cerr << "; tied, written once:";
      for (const auto& [dropped, kept] : r.tied) std::cerr << " " << dropped << " = " << kept;
    }
    if (!r.removed.empty()) {
      std::cerr << "; removed the earlier";
      for (const auto& f : r.removed) std::cerr << " " << f;
    }
    std::cerr << " (" << Progress::human_duration(r.seconds) << ")\n";
  }
  std::cout << o.out << "\n";
  return 0;
}

Runner configure(CLI::App& sub) {
  auto o = std::make_shared<ConvertCliOptions>();
  sub.add_option("model", o->model,
                 "Folder with pytorch_model.bin (or its .index.json shards), a .bin file, or a "
                 "hub id (downloaded when not cached)")
      ->required();
  sub.add_option("--to", o->to, "Output format")->capture_default_str();
  sub.add_option("--out", o->out, "Output folder")->required();
  sub.add_option("--max-shard-size", o->max_shard_gb,
                 "Split the output into shards of at most this many GB")
      ->capture_default_str();
  sub.add_flag("--quiet,--no-progress", o->quiet, "No progress bar or summary on stderr");
  return [o] { return run(*o); };
}

XLT_REGISTER_COMMAND("convert",
                     "Convert pytorch_model.bin to safetensors without Python (restricted "
                     "unpickler; dtypes kept, config/tokenizer copied)",
                     12, configure);

}  // namespace
}  // namespace xlt::cli
