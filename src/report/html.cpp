// Self-contained polyglot HTML for reports: escaping, tables (+ CSV), inline SVG with
// de-duplicated ids, and a document with a table of contents and a print-friendly stylesheet.
#include "xlt/report/html.h"

#include <cctype>

#include "xlt/core/error.h"
#include "xlt/data/csv.h"
#include "xlt/report/svg.h"

namespace xlt::report {
namespace {

// The stylesheet avoids '&' and '<' so the document stays well-formed XML.
constexpr const char* kCss = R"(
body { font-family: "DejaVu Sans", Helvetica, Arial, sans-serif; color: #222; margin: 0;
  line-height: 1.45; background: #fafafa; }
main { max-width: 1180px; margin: 0 auto; padding: 16px 28px 48px; background: #fff; }
h1 { font-size: 1.7em; margin: 0.4em 0 0.2em; }
h2 { font-size: 1.3em; border-bottom: 1px solid #ddd; padding-bottom: 4px; margin-top: 2em; }
h3 { font-size: 1.08em; margin-top: 1.4em; }
nav.toc { font-size: 0.92em; background: #f3f5f8; border: 1px solid #dde3ea; padding: 6px 14px;
  margin: 12px 0; }
nav.toc a { margin-right: 14px; color: #0b5394; text-decoration: none; }
.notice { border-left: 5px solid #0072B2; background: #eef5fb; padding: 8px 14px; margin: 12px 0; }
.notice.warning { border-left-color: #D55E00; background: #fdf1e9; font-weight: bold; }
table { border-collapse: collapse; margin: 10px 0 16px; font-size: 0.92em; }
caption { text-align: left; font-weight: bold; padding-bottom: 4px; }
th, td { border: 1px solid #d6d6d6; padding: 3px 9px; }
th { background: #f0f0f0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 14px 0 22px; }
figure svg { max-width: 100%; height: auto; }
figcaption { font-size: 0.9em; color: #444; margin-top: 4px; }
figcaption code, p code, li code { background: #f3f3f3; padding: 0 3px; }
.figrow { display: flex; flex-wrap: wrap; gap: 14px; align-items: flex-start; }
pre { background: #f6f6f6; border: 1px solid #e1e1e1; padding: 10px; overflow-x: auto;
  font-size: 0.85em; }
details { margin: 8px 0; }
summary { cursor: pointer; color: #0b5394; }
.answer { margin: 8px 0 12px; }
.hedged { color: #8a4b00; }
@media print { body { background: #fff; } main { max-width: none; } nav.toc { display: none; } }
)";

bool looks_numeric(const std::string& s) {
  if (s.empty()) return false;
  size_t digits = 0;
  for (char c : s) {
    if (std::isdigit(static_cast<unsigned char>(c))) {
      ++digits;
    } else if (std::string_view("+-.eE%\u00b1 []").find(c) == std::string_view::npos &&
               static_cast<unsigned char>(c) < 0x80) {
      return false;
    }
  }
  return digits > 0;
}

void replace_all(std::string& s, const std::string& from, const std::string& to) {
  for (size_t p = s.find(from); p != std::string::npos; p = s.find(from, p + to.size())) {
    s.replace(p, from.size(), to);
  }
}

}  // namespace

std::string escape_html(std::string_view text) {
  return escape_xml(text);
}

std::string table_html(const Table& t) {
  std::vector<bool> numeric = t.numeric;
  if (numeric.empty()) {
    numeric.assign(t.header.size(), true);
    for (const auto& row : t.rows) {
      for (size_t c = 0; c < row.size() && c < numeric.size(); ++c) {
        if (!row[c].empty() && row[c] != "-" && !looks_numeric(row[c])) numeric[c] = false;
      }
    }
  }
  std::string out = "<table>";
  if (!t.caption.empty()) out += "<caption>" + escape_html(t.caption) + "</caption>";
  out += "<thead><tr>";
  for (const auto& h : t.header) out += "<th>" + escape_html(h) + "</th>";
  out += "</tr></thead><tbody>\n";
  for (const auto& row : t.rows) {
    if (row.size() != t.header.size()) {
      throw UsageError("table '" + t.caption + "': a row has " + std::to_string(row.size()) +
                       " cells for " + std::to_string(t.header.size()) + " columns");
    }
    out += "<tr>";
    for (size_t c = 0; c < row.size(); ++c) {
      out += numeric[c] ? "<td class=\"num\">" : "<td>";
      out += escape_html(row[c]) + "</td>";
    }
    out += "</tr>\n";
  }
  return out + "</tbody></table>\n";
}

std::string table_csv(const Table& t) {
  std::string out;
  auto line = [&out](const std::vector<std::string>& cells) {
    for (size_t i = 0; i < cells.size(); ++i) out += (i ? "," : "") + data::csv_field(cells[i]);
    out += "\n";
  };
  line(t.header);
  for (const auto& row : t.rows) line(row);
  return out;
}

std::string inline_svg(std::string_view svg, std::string_view id_prefix) {
  std::string s(svg);
  if (s.rfind("<?xml", 0) == 0) {
    const size_t end = s.find("?>");
    if (end != std::string::npos) s.erase(0, s.find_first_not_of(" \r\n", end + 2));
  }
  // Collect the ids first, then rewrite definitions and references to each.
  std::vector<std::string> ids;
  for (size_t p = s.find(" id=\""); p != std::string::npos; p = s.find(" id=\"", p + 1)) {
    const size_t b = p + 5, e = s.find('"', b);
    if (e == std::string::npos) break;
    ids.push_back(s.substr(b, e - b));
  }
  const std::string prefix(id_prefix);
  for (const auto& id : ids) {
    replace_all(s, " id=\"" + id + "\"", " id=\"" + prefix + "-" + id + "\"");
    replace_all(s, "url(#" + id + ")", "url(#" + prefix + "-" + id + ")");
    replace_all(s, "href=\"#" + id + "\"", "href=\"#" + prefix + "-" + id + "\"");
  }
  return s;
}

HtmlDocument::HtmlDocument(std::string title) : title_(std::move(title)) {}

void HtmlDocument::section(const std::string& id, const std::string& title) {
  if (in_section_) body_ += "</section>\n";
  body_ += "<section id=\"" + escape_html(id) + "\">\n<h2>" + escape_html(title) + "</h2>\n";
  toc_.emplace_back(id, title);
  in_section_ = true;
}

void HtmlDocument::subsection(const std::string& title) {
  body_ += "<h3>" + escape_html(title) + "</h3>\n";
}

void HtmlDocument::paragraph(const std::string& text) {
  body_ += "<p>" + escape_html(text) + "</p>\n";
}

void HtmlDocument::paragraph_markup(const std::string& markup) {
  body_ += "<p>" + markup + "</p>\n";
}

void HtmlDocument::bullet_list(const std::vector<std::string>& items) {
  body_ += "<ul>";
  for (const auto& item : items) body_ += "<li>" + escape_html(item) + "</li>";
  body_ += "</ul>\n";
}

void HtmlDocument::notice(NoticeKind kind, const std::string& text) {
  body_ += std::string("<div class=\"notice") + (kind == NoticeKind::kWarning ? " warning" : "") +
           "\">" + escape_html(text) + "</div>\n";
}

void HtmlDocument::figure(const std::string& svg, const std::string& caption,
                          const std::string& name, bool file_note) {
  body_ += "<figure id=\"fig-" + escape_html(name) + "\">\n" + inline_svg(svg, "f-" + name) +
           "\n<figcaption>" + escape_html(caption);
  if (file_note) body_ += " <code>figures/" + escape_html(name) + ".svg</code>";
  body_ += "</figcaption>\n</figure>\n";
}

void HtmlDocument::figure_row(const std::vector<std::string>& svgs,
                              const std::vector<std::string>& names, const std::string& caption) {
  body_ += "<figure><div class=\"figrow\">\n";
  for (size_t i = 0; i < svgs.size(); ++i) {
    const std::string name = i < names.size() ? names[i] : "fig" + std::to_string(i);
    body_ += "<div id=\"fig-" + escape_html(name) + "\">" + inline_svg(svgs[i], "f-" + name) +
             "</div>\n";
  }
  body_ += "</div>\n<figcaption>" + escape_html(caption);
  for (const auto& n : names) body_ += " <code>figures/" + escape_html(n) + ".svg</code>";
  body_ += "</figcaption>\n</figure>\n";
}

void HtmlDocument::table(const Table& t) {
  body_ += table_html(t);
}

void HtmlDocument::preformatted(const std::string& text) {
  body_ += "<pre>" + escape_html(text) + "</pre>\n";
}

void HtmlDocument::details_begin(const std::string& summary) {
  body_ += "<details><summary>" + escape_html(summary) + "</summary>\n";
}

void HtmlDocument::details_end() {
  body_ += "</details>\n";
}

std::string HtmlDocument::str() const {
  std::string out =
      "<!DOCTYPE html>\n<html xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"en\">\n<head>\n"
      "<meta charset=\"utf-8\"/>\n"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>\n"
      "<meta name=\"generator\" content=\"xlt\"/>\n<title>" +
      escape_html(title_) + "</title>\n<style>" + kCss + "</style>\n</head>\n<body>\n<main>\n<h1>" +
      escape_html(title_) + "</h1>\n";
  if (!toc_.empty()) {
    out += "<nav class=\"toc\">";
    for (const auto& [id, title] : toc_) {
      out += "<a href=\"#" + escape_html(id) + "\">" + escape_html(title) + "</a>";
    }
    out += "</nav>\n";
  }
  out += body_;
  if (in_section_) out += "</section>\n";
  return out + "</main>\n</body>\n</html>\n";
}

}  // namespace xlt::report
