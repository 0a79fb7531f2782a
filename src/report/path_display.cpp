// Paths in the shared report: relative to the study config or the output folder instead of the
// absolute paths of the machine that ran it (see PathDisplay in study_internal.h).
#include <filesystem>

#include "report/study_internal.h"

namespace xlt::report::detail {
namespace {

namespace fs = std::filesystem;

// `path` relative to `dir` when it lies inside it (lexically: both are absolute, already
// normalised by the study runner); nullopt otherwise.
std::optional<std::string> inside(const fs::path& path, const std::string& dir) {
  if (dir.empty()) return std::nullopt;
  const fs::path rel = path.lexically_relative(fs::path(dir).lexically_normal());
  if (rel.empty() || *rel.begin() == "..") return std::nullopt;
  return rel == "." ? std::string(".") : rel.generic_string();
}

std::string first_component(const fs::path& p) {
  auto it = p.begin();
  if (it != p.end() && it->has_root_directory()) ++it;  // skip "/"
  return it != p.end() ? it->string() : std::string();
}

}  // namespace

PathDisplay::PathDisplay(const json& results, std::string home) : home_(std::move(home)) {
  const json study = results.value("study", json::object());
  const fs::path config = study.value("config_file", std::string());
  if (config.is_absolute()) config_dir_ = config.lexically_normal().parent_path().string();
  const fs::path out = study.value("out_dir", std::string());
  if (out.is_absolute()) out_dir_ = out.lexically_normal().string();
  if (!fs::path(home_).is_absolute() || fs::path(home_).lexically_normal() == "/") home_.clear();
}

std::string PathDisplay::operator()(const std::string& s) const {
  const fs::path p = fs::path(s).lexically_normal();
  if (s.empty() || !p.is_absolute()) return s;
  if (auto rel = inside(p, config_dir_)) return *rel;
  if (auto rel = inside(p, out_dir_)) return *rel == "." ? "<out>" : "<out>/" + *rel;
  if (auto rel = inside(p, home_)) return *rel == "." ? "~" : "~/" + *rel;
  if (!config_dir_.empty() && first_component(p) == first_component(config_dir_) &&
      !first_component(p).empty()) {
    return p.lexically_relative(config_dir_).generic_string();
  }
  return ".../" + p.filename().string();
}

json PathDisplay::scrub(const json& j) const {
  if (j.is_string()) return (*this)(j.get<std::string>());
  if (!j.is_structured()) return j;
  json out = j;
  for (auto& v : out) v = scrub(v);
  return out;
}

}  // namespace xlt::report::detail
