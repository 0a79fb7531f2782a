// `xlt download MODEL_ID [--revision REV] [--include GLOB...]`: fetches a model from the Hugging
// Face hub into the shared cache (the layout transformers uses, so either tool finds what the
// other downloaded) and prints the snapshot folder on stdout, like `huggingface-cli download`.
#include <iostream>

#include "command.h"
#include "xlt/core/error.h"
#include "xlt/core/progress.h"
#include "xlt/io/hub.h"
#include "xlt/io/hub_cache.h"

namespace xlt::cli {
namespace {

struct DownloadCliOptions {
  std::string model, revision, cache_dir;
  std::vector<std::string> include;
  bool quiet = false, force = false;
};

int run(const DownloadCliOptions& o) {
  io::HubOptions hub = io::HubOptions::from_env();
  if (!o.cache_dir.empty()) hub.cache_dir = o.cache_dir;
  hub.progress = !o.quiet;
  hub.force_download = o.force;
  io::RepoRef ref = io::RepoRef::parse(o.model);
  if (!o.revision.empty()) {
    if (o.model.find('@') != std::string::npos) {
      throw UsageError("give the revision either as " + o.model + " or with --revision, not both");
    }
    ref = io::RepoRef::parse(o.model + "@" + o.revision);
  }
  std::vector<std::string> include;
  for (const auto& v : o.include) {
    std::size_t start = 0;
    for (std::size_t comma; (comma = v.find(',', start)) != std::string::npos; start = comma + 1) {
      if (comma > start) include.push_back(v.substr(start, comma - start));
    }
    if (start < v.size()) include.push_back(v.substr(start));
  }
  io::SnapshotDownload d = io::download_model(ref.repo_id, ref.revision, include, hub);
  if (!o.quiet) {
    double rate = d.seconds > 0 ? static_cast<double>(d.bytes_downloaded) / d.seconds : 0;
    std::cerr << "xlt download: " << ref.str() << " (commit " << d.commit << "): " << d.files.size()
              << " files, " << d.files_downloaded << " downloaded ("
              << Progress::human_bytes(static_cast<double>(d.bytes_downloaded)) << " in "
              << Progress::human_duration(d.seconds) << ", " << Progress::human_bytes(rate) << "/s)"
              << (hub.offline ? " [offline: from the cache]" : "") << "\n";
  }
  std::cout << d.snapshot_dir.string() << "\n";
  return 0;
}

Runner configure(CLI::App& sub) {
  auto o = std::make_shared<DownloadCliOptions>();
  sub.add_option("model", o->model, "Hub model id: org/name or org/name@revision")->required();
  sub.add_option("--revision", o->revision, "Branch, tag or commit (default: main)");
  sub.add_option("--include", o->include,
                 "Only files matching these globs (repeatable or comma-separated, e.g. "
                 "'*.json,*.safetensors'); default: config, tokenizer and weights")
      ->take_all();
  sub.add_option("--cache-dir", o->cache_dir,
                 "Hub cache folder (default: $HF_HUB_CACHE, else $HF_HOME/hub, else "
                 "$XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub)");
  sub.add_flag("--quiet,--no-progress", o->quiet, "No progress bars or summary on stderr");
  sub.add_flag("--force", o->force,
               "Fetch every file again even if cached (replaces a damaged or truncated file)");
  sub.footer(
      "Environment: HF_ENDPOINT (default https://huggingface.co), HF_TOKEN (gated/private "
      "models), HF_HUB_OFFLINE=1 (cached files only, no network), HF_HUB_DOWNLOAD_TIMEOUT.");
  return [o] { return run(*o); };
}

XLT_REGISTER_COMMAND("download",
                     "Download a model from the Hugging Face hub into the shared HF cache "
                     "(resumable, verified; prints the snapshot folder)",
                     5, configure);

}  // namespace
}  // namespace xlt::cli
