// Duplicate-key-rejecting JSON parsing shared by the safetensors, index, config, manifest and
// tokenizer readers.
#include "core/json_strict.h"

#include <set>

namespace xlt::detail {

namespace {

struct Frame {
  bool is_object = false;
  std::set<std::string> keys;
  std::string last_key;
};

template <class Json>
std::string type_name(const Json& v) {
  if (v.is_null()) return "null";
  if (v.is_boolean()) return "a boolean";
  if (v.is_number_integer()) return "an integer";
  if (v.is_number()) return "a number";
  if (v.is_string()) return "a string";
  if (v.is_array()) return "an array";
  return "an object";
}

template <class Json>
Json parse_strict(std::string_view text) {
  std::vector<Frame> stack;
  auto callback = [&stack](int /*depth*/, typename Json::parse_event_t event, Json& parsed) {
    switch (event) {
      case Json::parse_event_t::object_start:
      case Json::parse_event_t::array_start:
        stack.push_back(Frame{event == Json::parse_event_t::object_start, {}, {}});
        break;
      case Json::parse_event_t::object_end:
      case Json::parse_event_t::array_end:
        if (!stack.empty()) stack.pop_back();
        break;
      case Json::parse_event_t::key: {
        Frame& top = stack.back();
        std::string key = parsed.template get<std::string>();
        if (!top.keys.insert(key).second) {
          JsonParseFailure f{JsonParseFailure::Kind::kDuplicateKey, key, {}, 0};
          for (std::size_t i = 0; i + 1 < stack.size(); ++i) {
            if (stack[i].is_object) f.path.push_back(stack[i].last_key);
          }
          throw f;
        }
        top.last_key = std::move(key);
        break;
      }
      case Json::parse_event_t::value:
        break;
    }
    return true;
  };
  try {
    return Json::parse(text.begin(), text.end(), callback);
  } catch (const typename Json::parse_error& e) {
    std::string what = e.what();
    // Drop nlohmann's "[json.exception.parse_error.101] " prefix: users need the explanation.
    if (auto pos = what.find("] "); pos != std::string::npos) what = what.substr(pos + 2);
    throw JsonParseFailure{JsonParseFailure::Kind::kSyntax, what, {}, e.byte};
  } catch (const typename Json::out_of_range& e) {
    // A number too large for a double ("1e999"): a malformed file, not an internal error
    // (found by fuzz/model_config_fuzz). nlohmann gives no offset for it.
    std::string what = e.what();
    if (auto pos = what.find("] "); pos != std::string::npos) what = what.substr(pos + 2);
    throw JsonParseFailure{JsonParseFailure::Kind::kSyntax, what, {}, 0};
  }
}

}  // namespace

nlohmann::ordered_json parse_json_strict(std::string_view text) {
  return parse_strict<nlohmann::ordered_json>(text);
}

nlohmann::json parse_json_strict_sorted(std::string_view text) {
  return parse_strict<nlohmann::json>(text);
}

std::string describe(const JsonParseFailure& failure) {
  if (failure.kind == JsonParseFailure::Kind::kSyntax) {
    return "malformed JSON at byte " + std::to_string(failure.byte) + ": " + failure.message;
  }
  return "duplicate key '" + failure.message + "'" +
         (failure.path.empty() ? std::string() : " in '" + failure.path.back() + "'");
}

std::string json_type_name(const nlohmann::ordered_json& value) {
  return type_name(value);
}
std::string json_type_name(const nlohmann::json& value) {
  return type_name(value);
}

}  // namespace xlt::detail
