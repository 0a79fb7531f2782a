// Reading a text file into lines for perplexity (see read_text_lines in xlt/eval/perplexity.h).
#include <filesystem>

#include "xlt/core/error.h"
#include "xlt/data/nli.h"
#include "xlt/eval/perplexity.h"

namespace xlt::eval {

std::vector<std::string> read_text_lines(const std::string& path) {
  if (!std::filesystem::exists(path)) throw FileNotFound("--text " + path + ": file not found");
  if (std::filesystem::is_directory(path))
    throw IoError("--text " + path + ": is a folder, expected a text file");
  // The study's perplexity.texts reader: a byte-order mark is not text (it was scored, and moved
  // bits per byte by 0.11 on five lines), and invalid UTF-8 is named by file and line.
  return data::read_utf8_lines(path);
}

}  // namespace xlt::eval
