// Private helper of xlt's modules: the few ASCII string tests C++17's std::string lacks
// (starts_with/ends_with arrived in C++20), kept in one place instead of a copy per file.
#pragma once

#include <string>
#include <string_view>

namespace xlt::detail {

inline bool starts_with(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && s.compare(0, prefix.size(), prefix) == 0;
}

inline bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// ASCII only, by design: used on header names, hex digests, file extensions and option values,
// never on text a tokenizer sees (that goes through utf8proc).
inline std::string ascii_lower(std::string s) {
  for (char& c : s) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return s;
}

}  // namespace xlt::detail
