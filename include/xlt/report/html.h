// A small writer for self-contained HTML reports: one file that opens offline (no external CSS,
// fonts, scripts or images; figures are inline SVG), with a table of contents, escaped text,
// tables that are also exported as CSV, and notices. The output is polyglot HTML5/XML (every
// element closed, attributes quoted, only XML's five entities), so tests can check it with an XML
// parser and browsers render it as ordinary HTML. No libtorch.
//
// Usage:
//   xlt::report::HtmlDocument doc("My study");
//   doc.section("results", "Results");
//   doc.paragraph("Accuracy per language.");
//   doc.figure(svg_text, "Figure 1: accuracy", "accuracy");
//   doc.table(table);
//   xlt::write_file_atomic("report.html", doc.str());
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace xlt::report {

// Escapes &, <, >, " and ' (and drops characters XML forbids) for HTML text and attributes.
std::string escape_html(std::string_view text);

struct Table {
  std::string caption;
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;  // each row has header.size() cells
  // Columns right-aligned as numbers (one flag per column; empty = guess from the cells).
  std::vector<bool> numeric;
};

// <table> markup (escaped). Throws xlt::UsageError when a row's size differs from the header's.
std::string table_html(const Table& table);
// RFC-4180 CSV with a header row, LF line ends.
std::string table_csv(const Table& table);

// An SVG document prepared for inlining in HTML: the XML declaration is removed and every
// id="X" (with its url(#X) / href="#X" references) is prefixed with `id_prefix` so several
// figures in one page cannot clash.
std::string inline_svg(std::string_view svg, std::string_view id_prefix);

enum class NoticeKind { kInfo, kWarning };

class HtmlDocument {
 public:
  explicit HtmlDocument(std::string title);

  // Starts a top-level section (listed in the table of contents). `id` must be unique.
  void section(const std::string& id, const std::string& title);
  // A sub-heading inside the current section.
  void subsection(const std::string& title);
  void paragraph(const std::string& text);
  // A paragraph of already-escaped inline markup (for <strong>, <code>, links within the page).
  void paragraph_markup(const std::string& markup);
  void bullet_list(const std::vector<std::string>& items);
  // A highlighted box (e.g. "the model is randomly initialised").
  void notice(NoticeKind kind, const std::string& text);
  // An inline SVG figure with a caption; `name` makes ids unique and is shown as the file name
  // (figures/<name>.svg) under the caption when `file_note` is set.
  void figure(const std::string& svg, const std::string& caption, const std::string& name,
              bool file_note = true);
  // Several figures in one row (wrapping on narrow screens).
  void figure_row(const std::vector<std::string>& svgs, const std::vector<std::string>& names,
                  const std::string& caption);
  void table(const Table& table);
  // A preformatted block (configuration text).
  void preformatted(const std::string& text);
  // Collapsible block around raw markup built with the helpers above.
  void details_begin(const std::string& summary);
  void details_end();

  // The complete document.
  std::string str() const;

 private:
  std::string title_;
  std::string body_;
  std::vector<std::pair<std::string, std::string>> toc_;  // id, title
  bool in_section_ = false;
};

}  // namespace xlt::report
