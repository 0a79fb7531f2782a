// A validator for the subset of JSON Schema (draft 2020-12 keywords) that xlt's own schemas use,
// e.g. docs/results-schema.json for a study's results.json. Supported keywords: type (a name or
// a list; "integer" accepts integral numbers), enum, const, properties, required,
// additionalProperties (false or a schema), items (one schema), minItems, maxItems, minimum,
// maximum, minLength, anyOf, $ref to "#/$defs/NAME" (or "#/definitions/NAME"). Annotation
// keywords ($schema, $id, title, description, $comment, default, examples) are ignored. Any
// other keyword is an error in the schema, so the validator never silently accepts what it does
// not check. No libtorch.
//
// Usage:
//   auto errors = xlt::report::validate_json(instance, schema);
//   for (auto& e : errors) std::cerr << e.path << ": " << e.message << "\n";
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace xlt::report {

struct SchemaViolation {
  std::string
      path;  // JSON Pointer into the instance ("" = the root), e.g. "/baseline/languages/en"
  std::string message;
};

// All violations found (empty = valid). Throws xlt::ConfigError for an unsupported keyword or a
// malformed schema (naming the schema location).
std::vector<SchemaViolation> validate_json(const nlohmann::json& instance,
                                           const nlohmann::json& schema);

}  // namespace xlt::report
