// JSON Schema validation through valijson (see json_schema.h). valijson reports where an error
// is as a list of "[key]" / "[index]" steps under "<root>"; they become a JSON Pointer here.
#include "xlt/report/json_schema.h"

#define VALIJSON_USE_EXCEPTIONS 1
#include <valijson/adapters/nlohmann_json_adapter.hpp>
#include <valijson/schema.hpp>
#include <valijson/schema_parser.hpp>
#include <valijson/validation_results.hpp>
#include <valijson/validator.hpp>

#include "xlt/core/error.h"

namespace xlt::report {
namespace {

std::string json_pointer(const std::vector<std::string>& context) {
  std::string out;
  for (const std::string& step : context) {
    if (step == "<root>") continue;
    std::string key = step;
    if (key.size() >= 2 && key.front() == '[' && key.back() == ']') {
      key = key.substr(1, key.size() - 2);
    }
    out += '/';
    for (char c : key) {
      if (c == '~') {
        out += "~0";
      } else if (c == '/') {
        out += "~1";
      } else {
        out += c;
      }
    }
  }
  return out;
}

}  // namespace

std::vector<SchemaViolation> validate_json(const nlohmann::json& instance,
                                           const nlohmann::json& schema) {
  valijson::Schema parsed;
  try {
    valijson::SchemaParser parser(valijson::SchemaParser::kDraft7);
    const valijson::adapters::NlohmannJsonAdapter schema_adapter(schema);
    parser.populateSchema(schema_adapter, parsed);
  } catch (const std::exception& e) {
    throw ConfigError(std::string("invalid JSON Schema: ") + e.what());
  }
  valijson::Validator validator(valijson::Validator::kStrongTypes);
  valijson::ValidationResults results;
  const valijson::adapters::NlohmannJsonAdapter instance_adapter(instance);
  validator.validate(parsed, instance_adapter, &results);
  std::vector<SchemaViolation> out;
  valijson::ValidationResults::Error e;
  while (results.popError(e)) out.push_back({json_pointer(e.context), e.description});
  return out;
}

}  // namespace xlt::report
