// `xlt download-data xnli|multinli [--dir DIR]`: fetches the canonical XNLI-1.0 / MultiNLI 1.0
// archive, checks it against its pinned SHA-256, unpacks it into the data cache and prints the
// dataset folder; afterwards `--data xnli:lang=hi:split=test` finds the files without a path.
#include <iostream>

#include "command.h"
#include "xlt/core/progress.h"
#include "xlt/io/dataset_download.h"

namespace xlt::cli {
namespace {

struct DownloadDataCliOptions {
  std::string name, dir;
  bool force = false, keep_archive = false, quiet = false;
};

int run(const DownloadDataCliOptions& o) {
  io::DatasetDownloadOptions opts;
  opts.dir = o.dir;
  opts.force = o.force;
  opts.keep_archive = o.keep_archive;
  opts.progress = !o.quiet;
  const io::DatasetSource& src = io::dataset_source(o.name);
  io::DatasetDownloadResult r = io::download_dataset(o.name, opts);
  if (!o.quiet) {
    std::cerr << "xlt download-data: " << src.name << (r.already_present ? " already in " : " in ")
              << r.dataset_dir.string() << " (" << r.files.size() << " files; archive "
              << Progress::human_bytes(static_cast<double>(r.bytes)) << ", sha256 " << r.sha256
              << ", checked against the " << r.checksum_source << " checksum)\n"
              << "  licence: " << src.license << "\n  use it as: --data "
              << (src.name == "xnli" ? "xnli:lang=hi:split=test" : "multinli:split=train") << "\n";
  }
  std::cout << r.dataset_dir.string() << "\n";
  return 0;
}

Runner configure(CLI::App& sub) {
  auto o = std::make_shared<DownloadDataCliOptions>();
  sub.add_option("dataset", o->name,
                 "xnli (XNLI-1.0 dev/test, 15 languages) or multinli "
                 "(MultiNLI 1.0, English train/dev)")
      ->required();
  sub.add_option("--dir", o->dir,
                 "Data cache folder (default: $XLT_DATA_HOME, else $XDG_CACHE_HOME/xlt/data, else "
                 "~/.cache/xlt/data)");
  sub.add_flag("--force", o->force, "Download and unpack again even when present");
  sub.add_flag("--keep-archive", o->keep_archive, "Keep the .zip under <dir>/.downloads/");
  sub.add_flag("--quiet,--no-progress", o->quiet, "No progress bars or summary on stderr");
  sub.footer(
      "Mirrors: XLT_XNLI_URL / XLT_MULTINLI_URL replace the download URL; the pinned "
      "checksum still applies unless XLT_XNLI_SHA256 / XLT_MULTINLI_SHA256 give another.");
  return [o] { return run(*o); };
}

XLT_REGISTER_COMMAND("download-data",
                     "Download and unpack XNLI or MultiNLI (checksum-verified) for --data "
                     "xnli:lang=..:split=.. specs",
                     6, configure);

}  // namespace
}  // namespace xlt::cli
