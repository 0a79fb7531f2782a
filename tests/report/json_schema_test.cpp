// Tests of JSON Schema validation through valijson: each draft-7 keyword xlt's schemas use
// accepts what it should and reports what it should, with the JSON Pointer of the offending
// value; keywords beyond the old hand-written subset (pattern, oneOf, format-free strings) are
// enforced; a schema with an unresolvable $ref is refused.
#include "xlt/report/json_schema.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "xlt/core/error.h"

namespace xlt::report {
namespace {

using nlohmann::json;

std::vector<std::string> paths(const std::vector<SchemaViolation>& v) {
  std::vector<std::string> out;
  for (const auto& e : v) out.push_back(e.path);
  return out;
}

bool has_path(const std::vector<SchemaViolation>& v, const std::string& path) {
  const auto p = paths(v);
  return std::find(p.begin(), p.end(), path) != p.end();
}

TEST(JsonSchema, TypesIncludingIntegerAndNullUnions) {
  EXPECT_TRUE(validate_json(3, {{"type", "integer"}}).empty());
  EXPECT_FALSE(validate_json(3.5, {{"type", "integer"}}).empty());
  EXPECT_TRUE(validate_json(nullptr, {{"type", {"number", "null"}}}).empty());
  EXPECT_TRUE(validate_json(0.5, {{"type", {"number", "null"}}}).empty());
  EXPECT_FALSE(validate_json("x", {{"type", {"number", "null"}}}).empty());
}

TEST(JsonSchema, ObjectsRequiredAndAdditional) {
  const json schema = {{"type", "object"},
                       {"required", {"a", "b"}},
                       {"properties", {{"a", {{"type", "string"}}}}},
                       {"additionalProperties", false}};
  EXPECT_TRUE(validate_json({{"a", "x"}, {"b", 1}}, json::parse(R"({
    "type": "object", "required": ["a", "b"], "properties": {"a": {"type": "string"},
    "b": {"type": "integer"}}})"))
                  .empty());
  const auto e = validate_json({{"a", 1}, {"c", true}}, schema);
  EXPECT_TRUE(has_path(e, "/a"));  // wrong type
  EXPECT_TRUE(has_path(e, ""));    // missing b, unexpected c
  EXPECT_FALSE(validate_json({{"a", "x"}}, schema).empty());
  // additionalProperties as a schema applies to every unlisted key (per-language maps); keys with
  // '/' are escaped in the pointer.
  const json map = {{"type", "object"}, {"additionalProperties", {{"type", "number"}}}};
  EXPECT_TRUE(validate_json({{"en", 0.5}, {"es", 1}}, map).empty());
  EXPECT_TRUE(has_path(validate_json({{"en/x", "?"}}, map), "/en~1x"));
}

TEST(JsonSchema, ArraysNumbersEnumsConst) {
  const json interval = {{"type", "array"},
                         {"minItems", 2},
                         {"maxItems", 2},
                         {"items", {{"type", "number"}, {"minimum", 0}, {"maximum", 1}}}};
  EXPECT_TRUE(validate_json({0.1, 0.9}, interval).empty());
  EXPECT_FALSE(validate_json({0.1}, interval).empty());
  EXPECT_FALSE(validate_json({0.1, 0.2, 0.3}, interval).empty());
  const auto e = validate_json({-0.5, 1.5}, interval);
  EXPECT_TRUE(has_path(e, "/0"));
  EXPECT_TRUE(has_path(e, "/1"));
  EXPECT_TRUE(validate_json("mean", {{"enum", {"mean", "cls"}}}).empty());
  EXPECT_FALSE(validate_json("max", {{"enum", {"mean", "cls"}}}).empty());
  EXPECT_TRUE(validate_json(1, {{"const", 1}}).empty());
  EXPECT_FALSE(validate_json(2, {{"const", 1}}).empty());
  EXPECT_FALSE(validate_json("", {{"type", "string"}, {"minLength", 1}}).empty());
}

TEST(JsonSchema, RefsAndAnyOf) {
  const json schema = json::parse(R"({
    "type": "object",
    "properties": {"m": {"anyOf": [{"type": "null"}, {"$ref": "#/definitions/model"}]}},
    "definitions": {"model": {"type": "object", "required": ["name"]}}})");
  EXPECT_TRUE(validate_json({{"m", nullptr}}, schema).empty());
  EXPECT_TRUE(validate_json({{"m", {{"name", "x"}}}}, schema).empty());
  EXPECT_TRUE(has_path(validate_json({{"m", {{"other", 1}}}}, schema), "/m"));
  EXPECT_THROW(validate_json(1, {{"$ref", "#/definitions/missing"}}), ConfigError);
}

TEST(JsonSchema, EnforcesKeywordsBeyondTheOldSubset) {
  // The hand-written validator refused these; a full draft-7 validator checks them.
  EXPECT_TRUE(validate_json("x1", {{"pattern", "^x[0-9]$"}}).empty());
  EXPECT_FALSE(validate_json("y", {{"pattern", "^x[0-9]$"}}).empty());
  const json one = {{"oneOf", {{{"type", "number"}}, {{"type", "integer"}}}}};
  EXPECT_TRUE(validate_json(0.5, one).empty());
  EXPECT_FALSE(validate_json(1, one).empty());  // matches both
  EXPECT_FALSE(validate_json({1, 1}, {{"uniqueItems", true}}).empty());
  // Annotations are fine.
  EXPECT_TRUE(validate_json(1, {{"title", "t"}, {"description", "d"}}).empty());
}

}  // namespace
}  // namespace xlt::report
