// Shared helpers of the analysis subcommands (see analysis_common.h).
#include "analysis_common.h"

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
  m.tokenizer = text::load_tokenizer(tokenizer.empty() ? dir : fs::path(tokenizer));
  return m;
}

void make_output_dir(const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw IoError(dir.string() + ": cannot create folder: " + ec.message());
}

std::string tsv_field(const std::string& value) {
  std::string s = value;
  for (char& c : s) {
    if (c == '\t' || c == '\n' || c == '\r') c = ' ';
  }
  return s;
}

}  // namespace xlt::cli
