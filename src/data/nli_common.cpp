// Small shared pieces of the NLI data types: format names, label sets, reports, UTF-8 checks;
// see include/xlt/data/nli.h.
#include <algorithm>
#include <cstdio>
#include <sstream>

#include "xlt/core/error.h"
#include "xlt/core/file.h"
#include "xlt/data/nli.h"

namespace xlt::data {

namespace {
struct FormatName {
  std::string_view name;
  NliFormat format;
};
constexpr FormatName kFormatNames[] = {
    {"auto", NliFormat::kAuto},
    {"xnli-tsv", NliFormat::kXnliTsv},
    {"xtreme-tsv", NliFormat::kXtremeTsv},
    {"mnli-jsonl", NliFormat::kMnliJsonl},
    {"hf-jsonl", NliFormat::kHfJsonl},
    {"hf-csv", NliFormat::kHfCsv},
    {"xnli", NliFormat::kXnliTsv},
    {"xtreme", NliFormat::kXtremeTsv},
    {"mnli", NliFormat::kMnliJsonl},
};
}  // namespace

NliFormat parse_nli_format(std::string_view name) {
  for (const auto& f : kFormatNames)
    if (f.name == name) return f.format;
  std::string accepted;
  for (const auto& n : nli_format_names()) accepted += (accepted.empty() ? "" : ", ") + n;
  throw UsageError("unknown data format '" + std::string(name) + "' (accepted: " + accepted +
                   "; aliases xnli, xtreme, mnli)");
}

std::string_view nli_format_name(NliFormat format) {
  for (const auto& f : kFormatNames)
    if (f.format == format) return f.name;
  return "?";
}

const std::vector<std::string>& nli_format_names() {
  static const std::vector<std::string> names = {"auto",       "xnli-tsv", "xtreme-tsv",
                                                 "mnli-jsonl", "hf-jsonl", "hf-csv"};
  return names;
}

LabelSet LabelSet::nli() {
  return LabelSet{{"entailment", "neutral", "contradiction"}};
}

int LabelSet::id(std::string_view name) const {
  for (size_t i = 0; i < names.size(); ++i)
    if (names[i] == name) return static_cast<int>(i);
  return kNoLabel;
}

const std::string& LabelSet::name(int id) const {
  static const std::string kNone = "-";
  if (id == kNoLabel) return kNone;
  return names.at(static_cast<size_t>(id));
}

std::string_view bad_row_code(BadRow reason) {
  switch (reason) {
    case BadRow::kColumnCount:
      return "column_count";
    case BadRow::kUnknownLabel:
      return "unknown_label";
    case BadRow::kInvalidUtf8:
      return "invalid_utf8";
    case BadRow::kEmptyText:
      return "empty_text";
    case BadRow::kMalformed:
      return "malformed";
  }
  return "?";
}

int64_t ReadReport::bad_total() const {
  int64_t total = 0;
  for (const auto& [code, count] : bad_rows) total += count;
  return total;
}

std::string ReadReport::summary() const {
  std::ostringstream s;
  s << path << ": " << kept << " examples";
  std::vector<std::string> notes;
  if (no_gold_label) notes.push_back(std::to_string(no_gold_label) + " without gold label ('-')");
  if (other_language) notes.push_back(std::to_string(other_language) + " in other languages");
  if (int64_t bad = bad_total()) {
    std::string b = std::to_string(bad) + " bad rows skipped:";
    for (const auto& [code, count] : bad_rows) b += " " + code + " " + std::to_string(count);
    notes.push_back(b);
  }
  for (size_t i = 0; i < notes.size(); ++i) s << (i == 0 ? " (" : "; ") << notes[i];
  if (!notes.empty()) s << ")";
  return s.str();
}

bool NliDataset::fully_labelled() const {
  return std::all_of(examples.begin(), examples.end(),
                     [](const NliExample& e) { return e.label != kNoLabel; });
}

std::vector<int> NliDataset::gold() const {
  std::vector<int> g;
  g.reserve(examples.size());
  for (const auto& e : examples) g.push_back(e.label);
  return g;
}

std::vector<int64_t> NliDataset::label_counts() const {
  std::vector<int64_t> counts(static_cast<size_t>(labels.size()), 0);
  for (const auto& e : examples)
    if (e.label >= 0 && e.label < labels.size()) ++counts[static_cast<size_t>(e.label)];
  return counts;
}

size_t find_invalid_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    unsigned char c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
      cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      cp = c & 0x07;
    } else {
      return i;  // continuation byte, C0/C1 (overlong) or F5..FF
    }
    if (i + len > n) return i;
    for (size_t k = 1; k < len; ++k) {
      unsigned char cc = p[i + k];
      if ((cc & 0xC0) != 0x80) return i;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF))
      return i;
    i += len;
  }
  return std::string_view::npos;
}

std::vector<std::string> read_utf8_lines(const std::filesystem::path& path, int64_t max_lines) {
  if (std::filesystem::is_directory(path)) {
    throw IoError(path.string() + ": is a folder, expected a text file");
  }
  std::string text = read_file(path);
  // A UTF-8 byte-order mark (Excel, Windows editors) is not text: left in, it hid a TSV's header
  // ("\xEF\xBB\xBFsentence" is no "sentence" column) and named a language "\uFEFFen".
  if (text.rfind("\xEF\xBB\xBF", 0) == 0) text.erase(0, 3);
  std::istringstream in(std::move(text));
  std::vector<std::string> lines;
  std::string line;
  while ((max_lines < 0 || static_cast<int64_t>(lines.size()) < max_lines) &&
         std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (const size_t bad = find_invalid_utf8(line); bad != std::string::npos) {
      char byte[8];
      std::snprintf(byte, sizeof byte, "0x%02X", static_cast<unsigned char>(line[bad]));
      throw DataError(path.string() + ":" + std::to_string(lines.size() + 1) +
                      ": invalid UTF-8 at byte " + std::to_string(bad) + " of the line (byte " +
                      byte + "); the file must be UTF-8");
    }
    lines.push_back(std::move(line));
  }
  return lines;
}

}  // namespace xlt::data
