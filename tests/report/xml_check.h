// A small strict XML well-formedness checker for tests of generated SVG: balanced tags, one root,
// quoted and unique attributes, only the five predefined or numeric entities, no raw '<' or '&'
// in text or attributes, valid UTF-8. Also counts elements by name and by class attribute and
// collects the text content, so tests can assert on what a figure contains.
#pragma once

#include <cctype>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace xlt::test {

struct XmlSummary {
  std::string error;  // empty when well-formed
  std::map<std::string, int> elements;
  std::map<std::string, int> classes;
  std::vector<std::string> texts;  // unescaped character data of each text node (trimmed)
  std::string root;
};

inline bool xml_name_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == ':' ||
         c == '.' || (static_cast<unsigned char>(c) >= 0x80);
}

// Checks `&...;` at s[i]; appends the decoded character (ASCII entities only) to `out`.
inline bool xml_entity(const std::string& s, size_t& i, std::string& out) {
  const size_t semi = s.find(';', i);
  if (semi == std::string::npos || semi - i > 10) return false;
  const std::string name = s.substr(i + 1, semi - i - 1);
  static const std::map<std::string, char> named = {
      {"amp", '&'}, {"lt", '<'}, {"gt", '>'}, {"quot", '"'}, {"apos", '\''}};
  if (auto it = named.find(name); it != named.end()) {
    out += it->second;
  } else if (name.size() >= 2 && name[0] == '#') {
    const bool hex = name[1] == 'x';
    const std::string digits = name.substr(hex ? 2 : 1);
    if (digits.empty()) return false;
    for (char c : digits) {
      if (!(hex ? std::isxdigit(static_cast<unsigned char>(c))
                : std::isdigit(static_cast<unsigned char>(c))))
        return false;
    }
    out += '?';
  } else {
    return false;
  }
  i = semi + 1;
  return true;
}

inline bool valid_utf8(const std::string& s) {
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    const int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (len == 0 || i + len > s.size()) return false;
    for (int k = 1; k < len; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xc0) != 0x80) return false;
    }
    i += len;
  }
  return true;
}

inline XmlSummary check_xml(const std::string& s) {
  XmlSummary r;
  auto fail = [&](const std::string& what, size_t at) {
    r.error = what + " at offset " + std::to_string(at) + ": '" + s.substr(at, 40) + "'";
    return r;
  };
  if (!valid_utf8(s)) return fail("invalid UTF-8", 0);
  size_t i = 0;
  if (s.compare(0, 5, "<?xml") == 0) {
    i = s.find("?>");
    if (i == std::string::npos) return fail("unterminated XML declaration", 0);
    i += 2;
  }
  std::vector<std::string> stack;
  bool root_closed = false;
  std::string text;
  while (i < s.size()) {
    if (s[i] != '<') {
      if (s[i] == '&') {
        if (!xml_entity(s, i, text)) return fail("bad entity", i);
        continue;
      }
      if (s[i] == '>') return fail("raw '>' in text", i);
      if (stack.empty() && !std::isspace(static_cast<unsigned char>(s[i])))
        return fail("text outside the root element", i);
      text += s[i++];
      continue;
    }
    const auto first = text.find_first_not_of(" \t\r\n");
    if (first != std::string::npos) {
      r.texts.push_back(text.substr(first, text.find_last_not_of(" \t\r\n") - first + 1));
    }
    text.clear();
    if (s.compare(i, 4, "<!--") == 0) {
      const size_t end = s.find("-->", i);
      if (end == std::string::npos) return fail("unterminated comment", i);
      i = end + 3;
      continue;
    }
    const bool closing = i + 1 < s.size() && s[i + 1] == '/';
    size_t j = i + (closing ? 2 : 1);
    const size_t name_start = j;
    while (j < s.size() && xml_name_char(s[j])) ++j;
    const std::string name = s.substr(name_start, j - name_start);
    if (name.empty()) return fail("missing tag name", i);
    if (closing) {
      while (j < s.size() && std::isspace(static_cast<unsigned char>(s[j]))) ++j;
      if (j >= s.size() || s[j] != '>') return fail("bad closing tag", i);
      if (stack.empty() || stack.back() != name) return fail("mismatched </" + name + ">", i);
      stack.pop_back();
      if (stack.empty()) root_closed = true;
      i = j + 1;
      continue;
    }
    if (root_closed || (stack.empty() && !r.root.empty())) return fail("second root element", i);
    if (stack.empty()) r.root = name;
    ++r.elements[name];
    std::set<std::string> attrs;
    bool self_closing = false;
    while (true) {
      const size_t before = j;
      while (j < s.size() && std::isspace(static_cast<unsigned char>(s[j]))) ++j;
      if (j >= s.size()) return fail("unterminated tag", i);
      if (s[j] == '>') {
        ++j;
        break;
      }
      if (s[j] == '/' && j + 1 < s.size() && s[j + 1] == '>') {
        self_closing = true;
        j += 2;
        break;
      }
      if (j == before) return fail("attributes must be separated by space", j);
      const size_t an = j;
      while (j < s.size() && xml_name_char(s[j])) ++j;
      const std::string attr = s.substr(an, j - an);
      if (attr.empty() || j >= s.size() || s[j] != '=') return fail("bad attribute", an);
      if (!attrs.insert(attr).second) return fail("duplicate attribute " + attr, an);
      ++j;
      if (j >= s.size() || (s[j] != '"' && s[j] != '\'')) return fail("unquoted attribute", an);
      const char quote = s[j++];
      std::string value;
      while (j < s.size() && s[j] != quote) {
        if (s[j] == '<') return fail("raw '<' in attribute", j);
        if (s[j] == '&') {
          if (!xml_entity(s, j, value)) return fail("bad entity in attribute", j);
          continue;
        }
        value += s[j++];
      }
      if (j >= s.size()) return fail("unterminated attribute", an);
      ++j;
      if (attr == "class") {
        size_t p = 0;
        while (p < value.size()) {
          const size_t q = value.find(' ', p);
          const std::string cls = value.substr(p, q == std::string::npos ? q : q - p);
          if (!cls.empty()) ++r.classes[cls];
          if (q == std::string::npos) break;
          p = q + 1;
        }
      }
    }
    if (!self_closing)
      stack.push_back(name);
    else if (stack.empty())
      root_closed = true;
    i = j;
  }
  if (!stack.empty()) return fail("unclosed <" + stack.back() + ">", s.size() - 1);
  if (r.root.empty()) return fail("no root element", 0);
  return r;
}

}  // namespace xlt::test
