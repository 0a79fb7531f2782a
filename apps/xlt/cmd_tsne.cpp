// `xlt tsne EMBEDDINGS --out OUT`: a 2-D t-SNE map of sentence/token embeddings (a safetensors
// file of 2-D tensors, or a TSV of vectors) with the metadata.tsv beside the input copied onto the
// points. Writes OUT/tsne.csv (index,x,y,<metadata columns>), OUT/tsne.json (resolved parameters,
// final KL divergence, iterations, time, method) and OUT/tsne.svg (scatter coloured by `lang`).
#include <cstdio>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <thread>

#include "command.h"
#include "xlt/analysis/embedding_file.h"
#include "xlt/analysis/tsne.h"
#include "xlt/core/error.h"
#include "xlt/core/file.h"
#include "xlt/core/progress.h"
#include "xlt/data/csv.h"
#include "xlt/report/svg.h"
#include "xlt/version.h"

namespace xlt::cli {
namespace {
namespace fs = std::filesystem;
using analysis::MetadataTable;

struct TsneCliOptions {
  std::string input, out, tensor, metadata, color_by, init = "pca", method = "auto";
  double perplexity = 30.0, theta = 0.5;
  int iterations = 1000, threads = 0;
  uint64_t seed = 0;
  bool no_progress = false;
};

std::string g9(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

std::string tsne_csv(const analysis::TsneResult& r, const MetadataTable* meta) {
  std::string out = "index,x,y";
  // xlt embed's metadata.tsv has its own `index` column (the same row number): not repeated.
  const int skip = meta ? meta->column("index") : -1;
  if (meta) {
    for (size_t c = 0; c < meta->columns.size(); ++c) {
      if (static_cast<int>(c) != skip) out += "," + data::csv_field(meta->columns[c]);
    }
  }
  out += "\n";
  for (int64_t i = 0; i < r.n; ++i) {
    out += std::to_string(i) + "," + g9(r.x(i)) + "," + g9(r.y(i));
    if (meta) {
      const auto& row = meta->rows[static_cast<size_t>(i)];
      for (size_t c = 0; c < row.size(); ++c) {
        if (static_cast<int>(c) != skip) out += "," + data::csv_field(row[c]);
      }
    }
    out += "\n";
  }
  return out;
}

// --color-by, else `lang` (used only when the metadata has it).
const std::string& color_column(const TsneCliOptions& o) {
  static const std::string kDefault = "lang";
  return o.color_by.empty() ? kDefault : o.color_by;
}

std::string tsne_plot(const analysis::TsneResult& r, const MetadataTable* meta,
                      const TsneCliOptions& o, const std::string& what) {
  report::ScatterData d;
  for (int64_t i = 0; i < r.n; ++i) {
    d.x.push_back(r.x(i));
    d.y.push_back(r.y(i));
  }
  const std::string& by = color_column(o);
  const int color = meta ? meta->column(by) : -1;
  const int sentence = meta ? meta->column("sentence") : -1;
  for (int64_t i = 0; meta && i < r.n; ++i) {
    const auto& row = meta->rows[static_cast<size_t>(i)];
    if (color >= 0) d.category.push_back(row[static_cast<size_t>(color)]);
    std::string tip = "#" + std::to_string(i);
    if (color >= 0) tip += " [" + row[static_cast<size_t>(color)] + "]";
    if (sentence >= 0) tip += " " + row[static_cast<size_t>(sentence)];
    d.hover.push_back(tip);
  }
  report::ScatterOptions so;
  char title[256];
  std::snprintf(title, sizeof title, "t-SNE of %s (%lld points, perplexity %.3g, KL %.3f)",
                what.c_str(), static_cast<long long>(r.n), r.perplexity, r.kl_divergence);
  so.title = title;
  so.legend_title = color >= 0 ? by : "";
  so.show_ticks = false;
  so.point_radius = r.n > 5000 ? 1.8 : r.n > 1000 ? 2.5 : 3.5;
  return report::scatter_svg(d, so);
}

// The input file: `xlt embed` output may be named by its folder, as `xlt align` takes it.
fs::path input_file(const std::string& given) {
  const fs::path path(given);
  if (!fs::is_directory(path)) return path;
  if (fs::exists(path / "embeddings.safetensors")) return path / "embeddings.safetensors";
  throw IoError(given +
                ": is a folder without embeddings.safetensors (expected `xlt embed` "
                "output, a safetensors file or a TSV of vectors)");
}

int run(const TsneCliOptions& o) {
  const fs::path input = input_file(o.input), out_dir(o.out);
  // --out is made ready before any work, and a run that fails leaves no empty folder behind.
  CreatedFolders out_folders(prepare_output_folder(o.out, "--out"));
  const analysis::LoadedMatrix loaded = analysis::load_embedding_matrix(input, o.tensor);
  const analysis::Matrix& x = loaded.matrix;

  // Metadata: --metadata, else metadata.tsv beside the input when present.
  std::unique_ptr<MetadataTable> meta;
  fs::path meta_path =
      o.metadata.empty() ? input.parent_path() / "metadata.tsv" : fs::path(o.metadata);
  if (!o.metadata.empty() || fs::exists(meta_path)) {
    meta = std::make_unique<MetadataTable>(analysis::read_metadata_tsv(meta_path));
    if (static_cast<int64_t>(meta->rows.size()) != x.rows) {
      throw DataError(meta_path.string() + ": " + std::to_string(meta->rows.size()) +
                      " metadata rows for " + std::to_string(x.rows) + " points in " +
                      input.string() + (loaded.tensor.empty() ? "" : " (" + loaded.tensor + ")"));
    }
  } else {
    meta_path.clear();
  }
  // A column asked for by name that is not there would leave the map silently uncoloured.
  if (!o.color_by.empty() && (!meta || meta->column(o.color_by) < 0)) {
    std::string have;
    for (const auto& c : meta ? meta->columns : std::vector<std::string>{})
      have += (have.empty() ? "" : ", ") + c;
    throw UsageError("--color-by " + o.color_by + ": " +
                     (meta ? meta_path.string() + " has no such column (columns: " + have + ")"
                           : std::string("no metadata (give --metadata FILE)")));
  }

  analysis::TsneOptions opt;
  opt.perplexity = o.perplexity;
  opt.max_iter = o.iterations;
  opt.init = analysis::parse_tsne_init(o.init);
  opt.method = analysis::parse_tsne_method(o.method);
  opt.seed = o.seed;
  opt.theta = o.theta;
  opt.threads = o.threads > 0 ? o.threads
                              : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  opt.warn = [](const std::string& w) { std::cerr << "xlt: warning: " << w << "\n"; };
  Progress progress("t-SNE", o.iterations, "it", !o.no_progress);
  opt.on_progress = [&progress](int done, int) { progress.set(done); };
  const analysis::TsneResult r = analysis::tsne(x.view(), opt);
  progress.finish();

  write_file_atomic(out_dir / "tsne.csv", tsne_csv(r, meta.get()));
  nlohmann::ordered_json j;
  j["xlt_version"] = XLT_VERSION;
  j["input"] = input.string();
  j["tensor"] = loaded.tensor.empty() ? nlohmann::ordered_json(nullptr)
                                      : nlohmann::ordered_json(loaded.tensor);
  j["metadata"] =
      meta ? nlohmann::ordered_json(meta_path.string()) : nlohmann::ordered_json(nullptr);
  j["color_by"] = meta && meta->column(color_column(o)) >= 0
                      ? nlohmann::ordered_json(color_column(o))
                      : nlohmann::ordered_json(nullptr);
  j["points"] = x.rows;
  j["dim"] = x.cols;
  j["parameters"] = {{"perplexity", o.perplexity},
                     {"iterations", o.iterations},
                     {"init", o.init},
                     {"seed", o.seed},
                     {"method", o.method},
                     {"theta", o.theta},
                     {"threads", opt.threads},
                     {"early_exaggeration", opt.early_exaggeration},
                     {"exploration_iterations", opt.exploration_iter},
                     {"learning_rate", "auto"},
                     {"min_grad_norm", opt.min_grad_norm},
                     {"n_iter_without_progress", opt.n_iter_without_progress}};
  j["method"] = analysis::to_string(r.method);
  j["perplexity_used"] = r.perplexity;
  j["learning_rate_used"] = r.learning_rate;
  j["neighbors"] = r.neighbors;
  j["knn"] = r.knn.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(r.knn);
  j["iterations_run"] = r.iterations;
  j["kl_divergence"] = r.kl_divergence;
  j["seconds"] = r.seconds;
  j["affinity_seconds"] = r.affinity_seconds;
  j["warnings"] = r.warnings;
  write_file_atomic(out_dir / "tsne.json", j.dump(2) + "\n");
  const std::string what = loaded.tensor.empty() ? input.filename().string() : loaded.tensor;
  write_file_atomic(out_dir / "tsne.svg", tsne_plot(r, meta.get(), o, what));

  std::fprintf(stderr, "t-SNE: %lld points x %lld dims, %s, %d iterations, KL %.4f, %.1f s -> %s\n",
               static_cast<long long>(x.rows), static_cast<long long>(x.cols),
               analysis::to_string(r.method).c_str(), r.iterations, r.kl_divergence, r.seconds,
               out_dir.string().c_str());
  return 0;
}

Runner configure(CLI::App& sub) {
  auto o = std::make_shared<TsneCliOptions>();
  sub.add_option("embeddings", o->input,
                 "safetensors file of 2-D [points, dim] float tensors, an `xlt embed` output "
                 "folder, or a TSV of vectors (one row per point); a metadata.tsv beside it "
                 "labels the points")
      ->required();
  sub.add_option("--out", o->out, "Output folder for tsne.csv, tsne.json and tsne.svg")->required();
  sub.add_option("--tensor", o->tensor,
                 "Tensor to map (default: the only 2-D tensor, else the last embeddings.layer{L})");
  sub.add_option("--metadata", o->metadata,
                 "Metadata TSV with a header row, one row per point (default: metadata.tsv beside "
                 "the input, when present)");
  sub.add_option("--color-by", o->color_by,
                 "Metadata column that colours the plot (default: lang, when the metadata has it)");
  sub.add_option("--perplexity", o->perplexity, "Effective number of neighbours")
      ->check(positive())
      ->capture_default_str();
  sub.add_option("--iterations", o->iterations,
                 "Gradient-descent iterations, the 250 early-exaggeration ones included")
      ->check(positive())
      ->capture_default_str();
  sub.add_option("--init", o->init, "Initial map: pca or random")
      ->check(CLI::IsMember({"pca", "random"}))
      ->capture_default_str();
  sub.add_option("--seed", o->seed, "Random seed (random init, tree construction)")
      ->capture_default_str();
  sub.add_option("--method", o->method,
                 "exact, barnes-hut, or auto (exact up to " +
                     std::to_string(analysis::kTsneExactMaxPoints) + " points)")
      ->check(CLI::IsMember({"auto", "exact", "barnes-hut"}))
      ->capture_default_str();
  sub.add_option("--theta", o->theta, "Barnes-Hut accuracy (0 = exact forces, larger = faster)")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  sub.add_option("--threads", o->threads,
                 "Worker threads (0 = all cores); results do not depend on it")
      ->check(thread_count())
      ->capture_default_str();
  sub.add_flag("--no-progress,--quiet", o->no_progress, "No progress bar");
  return [o]() { return run(*o); };
}

}  // namespace

XLT_REGISTER_COMMAND("tsne",
                     "2-D t-SNE map of embeddings (exact or Barnes-Hut) as CSV, JSON and SVG", 60,
                     configure);

}  // namespace xlt::cli
