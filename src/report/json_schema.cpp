// The JSON Schema subset validator (see json_schema.h for the keywords it understands).
#include "xlt/report/json_schema.h"

#include <cmath>
#include <set>

#include "xlt/core/error.h"

namespace xlt::report {
namespace {

using nlohmann::json;

const std::set<std::string>& known_keywords() {
  static const std::set<std::string> k = {
      "type",  "enum",        "const",    "properties",  "required", "additionalProperties",
      "items", "minItems",    "maxItems", "minimum",     "maximum",  "minLength",
      "anyOf", "$ref",        "$defs",    "definitions", "$schema",  "$id",
      "title", "description", "$comment", "default",     "examples"};
  return k;
}

std::string pointer_escape(const std::string& key) {
  std::string out;
  for (char c : key) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
  return out;
}

bool type_matches(const json& v, const std::string& type) {
  if (type == "object") return v.is_object();
  if (type == "array") return v.is_array();
  if (type == "string") return v.is_string();
  if (type == "boolean") return v.is_boolean();
  if (type == "null") return v.is_null();
  if (type == "number") return v.is_number();
  if (type == "integer") {
    if (v.is_number_integer()) return true;
    if (!v.is_number_float()) return false;
    const double d = v.get<double>();
    return std::isfinite(d) && std::floor(d) == d;
  }
  throw ConfigError("schema: unknown type '" + type + "'");
}

std::string type_name(const json& v) {
  switch (v.type()) {
    case json::value_t::object:
      return "object";
    case json::value_t::array:
      return "array";
    case json::value_t::string:
      return "string";
    case json::value_t::boolean:
      return "boolean";
    case json::value_t::null:
      return "null";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
      return "integer";
    default:
      return "number";
  }
}

class Validator {
 public:
  explicit Validator(const json& root) : root_(root) {}

  void check(const json& v, const json& schema, const std::string& path, const std::string& where) {
    if (schema.is_boolean()) {
      if (!schema.get<bool>()) add(path, "not allowed here");
      return;
    }
    if (!schema.is_object()) throw ConfigError("schema " + where + ": expected an object");
    for (const auto& [key, _] : schema.items()) {
      if (!known_keywords().count(key)) {
        throw ConfigError("schema " + where + ": unsupported keyword '" + key + "'");
      }
    }
    if (auto it = schema.find("$ref"); it != schema.end()) {
      check(v, resolve(it->get<std::string>(), where), path, it->get<std::string>());
    }
    if (auto it = schema.find("type"); it != schema.end()) {
      std::vector<std::string> types;
      if (it->is_string()) {
        types.push_back(it->get<std::string>());
      } else {
        for (const auto& t : *it) types.push_back(t.get<std::string>());
      }
      bool ok = false;
      for (const auto& t : types) ok = ok || type_matches(v, t);
      if (!ok) {
        std::string want;
        for (const auto& t : types) want += (want.empty() ? "" : " or ") + t;
        add(path, "expected " + want + ", found " + type_name(v));
        return;  // the other keywords would only repeat the type mismatch
      }
    }
    if (auto it = schema.find("const"); it != schema.end() && v != *it) {
      add(path, "expected " + it->dump() + ", found " + v.dump());
    }
    if (auto it = schema.find("enum"); it != schema.end()) {
      bool found = false;
      for (const auto& e : *it) found = found || e == v;
      if (!found) add(path, v.dump() + " is not one of " + it->dump());
    }
    if (v.is_number()) check_number(v.get<double>(), schema, path);
    if (v.is_string()) {
      if (auto it = schema.find("minLength");
          it != schema.end() && v.get<std::string>().size() < it->get<size_t>()) {
        add(path, "shorter than " + it->dump() + " characters");
      }
    }
    if (v.is_object()) check_object(v, schema, path, where);
    if (v.is_array()) check_array(v, schema, path, where);
    if (auto it = schema.find("anyOf"); it != schema.end()) {
      bool any = false;
      for (size_t i = 0; i < it->size() && !any; ++i) {
        Validator sub(root_);
        sub.check(v, (*it)[i], path, where + "/anyOf/" + std::to_string(i));
        any = sub.errors.empty();
      }
      if (!any) add(path, "matches none of the anyOf alternatives");
    }
  }

  std::vector<SchemaViolation> errors;

 private:
  void add(const std::string& path, std::string message) {
    errors.push_back({path, std::move(message)});
  }

  const json& resolve(const std::string& ref, const std::string& where) {
    for (const char* prefix : {"#/$defs/", "#/definitions/"}) {
      const std::string p(prefix);
      if (ref.rfind(p, 0) == 0) {
        const std::string group = p.substr(2, p.size() - 3);
        const std::string name = ref.substr(p.size());
        if (root_.contains(group) && root_[group].contains(name)) return root_[group][name];
      }
    }
    throw ConfigError("schema " + where + ": cannot resolve $ref '" + ref + "'");
  }

  void check_number(double d, const json& schema, const std::string& path) {
    if (auto it = schema.find("minimum"); it != schema.end() && d < it->get<double>()) {
      add(path, std::to_string(d) + " is below the minimum " + it->dump());
    }
    if (auto it = schema.find("maximum"); it != schema.end() && d > it->get<double>()) {
      add(path, std::to_string(d) + " is above the maximum " + it->dump());
    }
  }

  void check_object(const json& v, const json& schema, const std::string& path,
                    const std::string& where) {
    if (auto it = schema.find("required"); it != schema.end()) {
      for (const auto& key : *it) {
        if (!v.contains(key.get<std::string>())) {
          add(path, "missing required property '" + key.get<std::string>() + "'");
        }
      }
    }
    const json* props = schema.contains("properties") ? &schema["properties"] : nullptr;
    const auto additional = schema.find("additionalProperties");
    for (const auto& [key, value] : v.items()) {
      const std::string sub = path + "/" + pointer_escape(key);
      if (props && props->contains(key)) {
        check(value, (*props)[key], sub, where + "/properties/" + key);
      } else if (additional != schema.end()) {
        if (additional->is_boolean() && !additional->get<bool>()) {
          add(sub, "unexpected property '" + key + "'");
        } else {
          check(value, *additional, sub, where + "/additionalProperties");
        }
      }
    }
  }

  void check_array(const json& v, const json& schema, const std::string& path,
                   const std::string& where) {
    if (auto it = schema.find("minItems"); it != schema.end() && v.size() < it->get<size_t>()) {
      add(path, "fewer than " + it->dump() + " items");
    }
    if (auto it = schema.find("maxItems"); it != schema.end() && v.size() > it->get<size_t>()) {
      add(path, "more than " + it->dump() + " items");
    }
    if (auto it = schema.find("items"); it != schema.end()) {
      for (size_t i = 0; i < v.size(); ++i) {
        check(v[i], *it, path + "/" + std::to_string(i), where + "/items");
      }
    }
  }

  const json& root_;
};

}  // namespace

std::vector<SchemaViolation> validate_json(const nlohmann::json& instance,
                                           const nlohmann::json& schema) {
  Validator v(schema);
  v.check(instance, schema, "", "#");
  return std::move(v.errors);
}

}  // namespace xlt::report
