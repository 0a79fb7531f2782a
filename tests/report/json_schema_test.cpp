// Tests of the JSON Schema subset validator: each keyword accepts what it should and reports
// what it should (with the JSON Pointer of the offending value), and unsupported keywords are
// refused rather than ignored.
#include "xlt/report/json_schema.h"

#include <gtest/gtest.h>

#include "xlt/core/error.h"

namespace xlt::report {
namespace {

using nlohmann::json;

std::vector<std::string> paths(const std::vector<SchemaViolation>& v) {
  std::vector<std::string> out;
  for (const auto& e : v) out.push_back(e.path + " " + e.message);
  return out;
}

TEST(JsonSchema, TypesIncludingIntegerAndNullUnions) {
  EXPECT_TRUE(validate_json(3, {{"type", "integer"}}).empty());
  EXPECT_TRUE(validate_json(3.0, {{"type", "integer"}}).empty());  // integral float
  EXPECT_EQ(validate_json(3.5, {{"type", "integer"}}).size(), 1u);
  EXPECT_TRUE(validate_json(nullptr, {{"type", {"number", "null"}}}).empty());
  const auto e = validate_json("x", {{"type", {"number", "null"}}});
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].message, "expected number or null, found string");
}

TEST(JsonSchema, ObjectsRequiredAndAdditional) {
  const json schema = {{"type", "object"},
                       {"required", {"a", "b"}},
                       {"properties", {{"a", {{"type", "string"}}}}},
                       {"additionalProperties", false}};
  EXPECT_TRUE(validate_json({{"a", "x"}, {"b", 1}}, json::parse(R"({
    "type": "object", "required": ["a", "b"], "properties": {"a": {"type": "string"},
    "b": {"type": "integer"}}, "additionalProperties": false})"))
                  .empty());
  const auto e = paths(validate_json({{"a", 1}, {"c", true}}, schema));
  ASSERT_EQ(e.size(), 3u);
  EXPECT_EQ(e[0], " missing required property 'b'");
  EXPECT_EQ(e[1], "/a expected string, found integer");
  EXPECT_EQ(e[2], "/c unexpected property 'c'");
  // additionalProperties as a schema applies to every unlisted key (per-language maps).
  const json map = {{"type", "object"}, {"additionalProperties", {{"type", "number"}}}};
  EXPECT_TRUE(validate_json({{"en", 0.5}, {"es", 1}}, map).empty());
  EXPECT_EQ(paths(validate_json({{"en/x", "?"}}, map))[0], "/en~1x expected number, found string");
}

TEST(JsonSchema, ArraysNumbersEnumsConst) {
  const json interval = {{"type", "array"},
                         {"minItems", 2},
                         {"maxItems", 2},
                         {"items", {{"type", "number"}, {"minimum", 0}, {"maximum", 1}}}};
  EXPECT_TRUE(validate_json({0.1, 0.9}, interval).empty());
  EXPECT_EQ(validate_json({0.1}, interval).size(), 1u);
  EXPECT_EQ(validate_json({0.1, 0.2, 0.3}, interval).size(), 1u);
  const auto e = paths(validate_json({-0.5, 1.5}, interval));
  ASSERT_EQ(e.size(), 2u);
  EXPECT_EQ(e[0].substr(0, 3), "/0 ");
  EXPECT_EQ(e[1].substr(0, 3), "/1 ");
  EXPECT_TRUE(validate_json("mean", {{"enum", {"mean", "cls"}}}).empty());
  EXPECT_EQ(validate_json("max", {{"enum", {"mean", "cls"}}}).size(), 1u);
  EXPECT_TRUE(validate_json(1, {{"const", 1}}).empty());
  EXPECT_EQ(validate_json(2, {{"const", 1}}).size(), 1u);
  EXPECT_EQ(validate_json("", {{"type", "string"}, {"minLength", 1}}).size(), 1u);
}

TEST(JsonSchema, RefsAndAnyOf) {
  const json schema = json::parse(R"({
    "type": "object",
    "properties": {"m": {"anyOf": [{"type": "null"}, {"$ref": "#/$defs/model"}]}},
    "$defs": {"model": {"type": "object", "required": ["name"]}}})");
  EXPECT_TRUE(validate_json({{"m", nullptr}}, schema).empty());
  EXPECT_TRUE(validate_json({{"m", {{"name", "x"}}}}, schema).empty());
  const auto e = paths(validate_json({{"m", {{"other", 1}}}}, schema));
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0], "/m matches none of the anyOf alternatives");
  EXPECT_THROW(validate_json(1, {{"$ref", "#/$defs/missing"}}), ConfigError);
}

TEST(JsonSchema, RefusesUnsupportedKeywords) {
  EXPECT_THROW(validate_json("x", {{"pattern", "^x$"}}), ConfigError);
  EXPECT_THROW(validate_json(1, {{"oneOf", json::array()}}), ConfigError);
  // Annotations are fine.
  EXPECT_TRUE(validate_json(1, {{"title", "t"}, {"description", "d"}}).empty());
}

}  // namespace
}  // namespace xlt::report
