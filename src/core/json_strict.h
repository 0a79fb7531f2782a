// Private helper of xlt's modules: JSON parsing that rejects duplicate object keys. nlohmann's
// parser silently keeps the last of two equal keys, which would let a corrupt safetensors header,
// config.json or tokenizer.json hide a tensor or a setting; every JSON input parser goes through
// this instead.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace xlt::detail {

// Thrown by parse_json_strict; callers turn it into their own typed error.
struct JsonParseFailure {
  enum class Kind { kSyntax, kDuplicateKey } kind;
  std::string message;            // syntax: nlohmann's explanation; duplicate: the key
  std::vector<std::string> path;  // duplicate: keys of the enclosing objects, outermost first
  std::size_t byte = 0;           // syntax: 1-based byte offset of the error
};

// Parses `text` keeping object keys in document order. Throws JsonParseFailure. Inserting into an
// ordered_json object is a linear search: for objects of many thousand keys (a tokenizer.json
// vocabulary) use parse_json_strict_sorted.
nlohmann::ordered_json parse_json_strict(std::string_view text);
// The same checks, into a key-sorted nlohmann::json (logarithmic inserts).
nlohmann::json parse_json_strict_sorted(std::string_view text);

// "malformed JSON at byte N: why" or "duplicate key 'k'" (with " in 'outer'" when nested), for
// callers that need no finer wording; they prefix the file name and throw their own error type.
std::string describe(const JsonParseFailure& failure);

// Short description of a JSON value's type for error messages ("a string", "null", ...).
std::string json_type_name(const nlohmann::ordered_json& value);
std::string json_type_name(const nlohmann::json& value);

}  // namespace xlt::detail
