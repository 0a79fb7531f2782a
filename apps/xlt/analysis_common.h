// What `xlt embed`, `xlt align` and `xlt attention` share: loading a model with its tokenizer
// from a folder or hub id, the --layer/--pool/--special options, and output-folder creation.
#pragma once

#include <CLI/CLI.hpp>

#include <filesystem>
#include <memory>
#include <string>

#include "command.h"
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

// Creates `dir` (and parents); IoError naming it on failure.
void make_output_dir(const std::filesystem::path& dir);

// `value` with tabs, CR and LF replaced by spaces (for one TSV field).
std::string tsv_field(const std::string& value);

}  // namespace xlt::cli
