// JSON Schema (draft 7) validation of xlt's documents, e.g. a study's results.json against
// docs/results-schema.json, through valijson (header-only, Debian libvalijson-dev) on nlohmann
// values. No libtorch.
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

// All violations found (empty = valid), innermost first as valijson reports them: a value that
// fails inside an object also yields one violation per enclosing property. Throws
// xlt::ConfigError for a schema valijson cannot parse (e.g. an unresolvable $ref).
std::vector<SchemaViolation> validate_json(const nlohmann::json& instance,
                                           const nlohmann::json& schema);

}  // namespace xlt::report
