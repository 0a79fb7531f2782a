// Reading a text file into lines for perplexity (see read_text_lines in xlt/eval/perplexity.h).
#include <filesystem>

#include "xlt/core/error.h"
#include "xlt/core/file.h"
#include "xlt/eval/perplexity.h"

namespace xlt::eval {

std::vector<std::string> read_text_lines(const std::string& path) {
  if (!std::filesystem::exists(path)) throw FileNotFound("--text " + path + ": file not found");
  if (std::filesystem::is_directory(path))
    throw IoError("--text " + path + ": is a folder, expected a text file");
  const std::string content = read_file(path);
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < content.size()) {
    size_t nl = content.find('\n', start);
    if (nl == std::string::npos) nl = content.size();
    lines.push_back(content.substr(start, nl - start));
    start = nl + 1;
  }
  return lines;
}

}  // namespace xlt::eval
