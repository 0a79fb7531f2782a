// Tests of the self-contained HTML writer: escaping, tables (HTML and CSV), inline SVG id
// rewriting, and a whole document that is well-formed XML with its table of contents.
#include "xlt/report/html.h"

#include <gtest/gtest.h>

#include "report/xml_check.h"
#include "xlt/core/error.h"
#include "xlt/report/svg.h"

namespace xlt::report {
namespace {

std::string strip_doctype(const std::string& html) {
  const std::string d = "<!DOCTYPE html>\n";
  return html.rfind(d, 0) == 0 ? html.substr(d.size()) : html;
}

TEST(Html, EscapesText) {
  EXPECT_EQ(escape_html("a<b>&\"c\""), "a&lt;b&gt;&amp;&quot;c&quot;");
}

TEST(Html, TableHtmlAndCsv) {
  Table t;
  t.caption = "acc <1>";
  t.header = {"lang", "accuracy", "note"};
  t.rows = {{"en", "81.2%", "a, \"quoted\" note"}, {"es", "-", "x<y"}};
  const std::string html = table_html(t);
  EXPECT_NE(html.find("<caption>acc &lt;1&gt;</caption>"), std::string::npos);
  // Column 2 is numeric ("81.2%" and "-"), the others are not.
  EXPECT_NE(html.find("<td class=\"num\">81.2%</td>"), std::string::npos);
  EXPECT_NE(html.find("<td>en</td>"), std::string::npos);
  EXPECT_NE(html.find("<td>x&lt;y</td>"), std::string::npos);
  EXPECT_EQ(test::check_xml(html).error, "");
  EXPECT_EQ(table_csv(t), "lang,accuracy,note\nen,81.2%,\"a, \"\"quoted\"\" note\"\nes,-,x<y\n");
  t.rows.push_back({"only one"});
  EXPECT_THROW(table_html(t), UsageError);
}

TEST(Html, InlineSvgDropsDeclarationAndPrefixesIds) {
  const std::string svg =
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\">"
      "<defs><linearGradient id=\"g\"/></defs><rect fill=\"url(#g)\"/><use href=\"#g\"/></svg>";
  const std::string out = inline_svg(svg, "f1");
  EXPECT_EQ(out.rfind("<svg", 0), 0u);
  EXPECT_NE(out.find("id=\"f1-g\""), std::string::npos);
  EXPECT_NE(out.find("url(#f1-g)"), std::string::npos);
  EXPECT_NE(out.find("href=\"#f1-g\""), std::string::npos);
  EXPECT_EQ(out.find("\"g\""), std::string::npos);
}

TEST(Html, DocumentIsWellFormedWithToc) {
  HtmlDocument doc("Study & results");
  doc.notice(NoticeKind::kWarning, "random <model>");
  doc.section("a", "First");
  doc.paragraph("text > here");
  BarChartData d;
  d.categories = {"en", "es"};
  d.series = {{"acc", {50, 40}, {2, 3}}};
  const std::string bar = bar_chart_svg(d, {});
  doc.figure(bar, "Figure 1", "bar");
  HeatmapPanel p{"p", 1, 2, {0.1, 0.9}, {"q"}, {"k1", "k2"}};
  const std::string heat = heatmap_svg({p}, {});
  doc.figure_row({heat, heat}, {"h1", "h2"}, "two heatmaps");
  doc.section("b", "Second");
  doc.bullet_list({"x", "y & z"});
  doc.details_begin("more");
  doc.preformatted("{\"a\": 1}");
  doc.details_end();
  const std::string html = doc.str();
  EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
  const auto summary = test::check_xml(strip_doctype(html));
  ASSERT_EQ(summary.error, "");
  EXPECT_EQ(summary.root, "html");
  EXPECT_EQ(summary.elements.at("svg"), 3);
  EXPECT_EQ(summary.elements.at("section"), 2);
  EXPECT_EQ(summary.elements.at("figure"), 2);
  // Both heatmaps' colour-bar gradients got distinct ids.
  EXPECT_NE(html.find("id=\"f-h1-xlt-colorbar\""), std::string::npos);
  EXPECT_NE(html.find("id=\"f-h2-xlt-colorbar\""), std::string::npos);
  EXPECT_NE(html.find("<a href=\"#a\">First</a><a href=\"#b\">Second</a>"), std::string::npos);
  // Self-contained: no external resources or scripts.
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("src=\"http"), std::string::npos);
  EXPECT_EQ(html.find("<link"), std::string::npos);
}

}  // namespace
}  // namespace xlt::report
