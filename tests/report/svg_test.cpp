// Tests of the SVG figure writer: every figure is well-formed XML (strict checker below, itself
// tested on malformed inputs), escapes its text, and contains the expected elements (one cell per
// heatmap value, one point per scatter point, one bar and error bar per value, legends).
#include "xlt/report/svg.h"

#include <gtest/gtest.h>

#include <cmath>
#include <regex>

#include "report/svg_internal.h"
#include "report/xml_check.h"
#include "xlt/core/error.h"

namespace xlt::report {
namespace {

using test::check_xml;

int count_of(const std::string& haystack, const std::string& needle) {
  int n = 0;
  for (size_t p = haystack.find(needle); p != std::string::npos; p = haystack.find(needle, p + 1))
    ++n;
  return n;
}

bool has_text(const test::XmlSummary& s, const std::string& t) {
  return std::find(s.texts.begin(), s.texts.end(), t) != s.texts.end();
}

TEST(XmlCheck, AcceptsWellFormedAndRejectsMalformed) {
  EXPECT_EQ(check_xml("<?xml version=\"1.0\"?>\n<a x=\"1\"><b/>t &amp; &#x41;</a>").error, "");
  EXPECT_NE(check_xml("<a><b></a></b>").error, "");        // crossed tags
  EXPECT_NE(check_xml("<a>x & y</a>").error, "");          // raw ampersand
  EXPECT_NE(check_xml("<a>x < y</a>").error, "");          // raw '<'
  EXPECT_NE(check_xml("<a x=1/>").error, "");              // unquoted attribute
  EXPECT_NE(check_xml("<a x=\"1\" x=\"2\"/>").error, "");  // duplicate attribute
  EXPECT_NE(check_xml("<a x=\"<\"/>").error, "");          // '<' in attribute
  EXPECT_NE(check_xml("<a/><b/>").error, "");              // two roots
  EXPECT_NE(check_xml("<a>").error, "");                   // unclosed
  EXPECT_NE(check_xml("<a>\xff</a>").error, "");           // invalid UTF-8
  EXPECT_NE(check_xml("<a>&nbsp;</a>").error, "");         // undefined entity
}

TEST(Svg, EscapesMarkupControlCharactersAndBadUtf8) {
  EXPECT_EQ(escape_xml("a<b & \"c\" 'd'>"), "a&lt;b &amp; &quot;c&quot; &apos;d&apos;&gt;");
  EXPECT_EQ(escape_xml("x\x01y\tz"), "xy\tz");  // C0 control dropped, tab kept
  EXPECT_EQ(escape_xml("\xe2\x96\x81the \xc3\xa9"), "\xe2\x96\x81the \xc3\xa9");  // UTF-8 kept
  EXPECT_EQ(escape_xml("a\xffz"), "a\xef\xbf\xbdz");  // invalid byte -> U+FFFD
  EXPECT_EQ(escape_xml("\xc0\xaf"), "\xef\xbf\xbd");  // overlong '/' rejected
}

TEST(Svg, PalettesAreOkabeItoViridisAndRdBu) {
  EXPECT_EQ(category_color(0), "#0072B2");
  EXPECT_EQ(category_color(1), "#E69F00");
  EXPECT_EQ(category_color(8), "#0072B2");  // repeats after 8
  EXPECT_EQ(colormap_color(ColorMap::Viridis, 0.0), "#440154");
  EXPECT_EQ(colormap_color(ColorMap::Viridis, 0.5), "#21918c");
  EXPECT_EQ(colormap_color(ColorMap::Viridis, 1.0), "#fde725");
  EXPECT_EQ(colormap_color(ColorMap::Viridis, 7.0), "#fde725");  // clamped
  EXPECT_EQ(colormap_color(ColorMap::Diverging, 0.5), "#f7f7f7");
  EXPECT_EQ(colormap_color(ColorMap::Diverging, 0.0), "#2166ac");
}

TEST(Svg, NiceTicksAndLabels) {
  const auto t = detail::nice_ticks(0.0, 1.0, 6);
  ASSERT_EQ(t.size(), 6u);
  EXPECT_DOUBLE_EQ(t[1], 0.2);
  EXPECT_EQ(detail::tick_label(t[3], t), "0.6");
  const auto u = detail::nice_ticks(0.0, 12.0, 8);
  EXPECT_EQ(u, (std::vector<double>{0, 2, 4, 6, 8, 10, 12}));
  EXPECT_EQ(detail::tick_label(4, u), "4");
  EXPECT_EQ(detail::num(3.14159), "3.14");
  EXPECT_EQ(detail::num(2.0), "2");
}

TEST(Svg, HeatmapPanelsShareOneColourScale) {
  HeatmapPanel a, b;
  a.title = "layer 0, head 1";
  b.title = "layer 11 <last>";
  a.rows = b.rows = 3;
  a.cols = b.cols = 4;
  for (int i = 0; i < 12; ++i) a.values.push_back(i);
  b.values.assign(12, 11.0);
  a.row_labels = b.row_labels = {"<s>", "caf\xc3\xa9", "&"};
  a.col_labels = b.col_labels = {"<s>", "##ing", "\xe2\x96\x81the", "</s>"};
  HeatmapOptions o;
  o.title = "attention";
  o.x_label = "key";
  o.y_label = "query";
  o.colorbar_label = "weight";
  const std::string svg = heatmap_svg({a, b}, o);
  const auto s = check_xml(svg);
  ASSERT_EQ(s.error, "") << svg;
  EXPECT_EQ(s.root, "svg");
  EXPECT_EQ(s.classes.at("cell"), 24);
  EXPECT_EQ(s.classes.at("colorbar"), 1);
  EXPECT_EQ(s.classes.at("row-label"), 6);
  EXPECT_EQ(s.classes.at("col-label"), 8);
  EXPECT_EQ(s.elements.at("title"), 24);  // one tooltip per cell
  EXPECT_TRUE(has_text(s, "<s>"));
  EXPECT_TRUE(has_text(s, "&"));
  EXPECT_TRUE(has_text(s, "layer 11 <last>"));
  EXPECT_TRUE(has_text(s, "<s> \u2192 ##ing: 1"));
  // Scale 0..11 over both panels: the 11 in panel a and all 12 cells of b get the top colour.
  EXPECT_EQ(count_of(svg, "fill=\"#fde725\""), 13);
  EXPECT_EQ(count_of(svg, "fill=\"#440154\""), 1);
}

TEST(Svg, HeatmapRejectsMismatchedShapes) {
  HeatmapPanel p;
  p.rows = 2;
  p.cols = 2;
  p.values = {1, 2, 3};
  EXPECT_THROW(heatmap_svg({p}, {}), UsageError);
  p.values = {1, 2, 3, 4};
  p.row_labels = {"a"};
  EXPECT_THROW(heatmap_svg({p}, {}), UsageError);
  EXPECT_THROW(heatmap_svg({}, {}), UsageError);
}

TEST(Svg, ScatterHasOnePointPerRowALegendAndTooltips) {
  ScatterData d;
  const char* langs[] = {"en", "de", "a&b"};
  for (int i = 0; i < 30; ++i) {
    d.x.push_back(std::cos(i));
    d.y.push_back(std::sin(i) * 2);
    d.category.push_back(langs[i % 3]);
    d.hover.push_back("sentence " + std::to_string(i) + " <" + langs[i % 3] + ">");
    d.label.push_back(i < 2 ? "pt" + std::to_string(i) : "");
  }
  ScatterOptions o;
  o.title = "t-SNE";
  o.legend_title = "lang";
  const std::string svg = scatter_svg(d, o);
  const auto s = check_xml(svg);
  ASSERT_EQ(s.error, "") << svg;
  EXPECT_EQ(s.classes.at("point"), 30);
  EXPECT_EQ(s.classes.at("legend-swatch"), 3);
  EXPECT_EQ(s.elements.at("circle"), 33);
  EXPECT_EQ(s.elements.at("title"), 30);
  EXPECT_EQ(s.classes.at("point-label"), 2);
  EXPECT_TRUE(has_text(s, "a&b"));
  EXPECT_TRUE(has_text(s, "sentence 2 <a&b>"));
  EXPECT_TRUE(has_text(s, "lang"));
  // Legend order is sorted by default: a&b, de, en get the first three colours.
  EXPECT_LT(svg.find(">a&amp;b<"), svg.find(">de<"));
  EXPECT_THROW(scatter_svg(ScatterData{{1, 2}, {1}, {}, {}, {}}, o), UsageError);
}

TEST(Svg, ScatterBeyondEightCategoriesUsesHollowMarkers) {
  ScatterData d;
  for (int i = 0; i < 20; ++i) {
    d.x.push_back(i);
    d.y.push_back(i % 7);
    d.category.push_back("c" + std::string(1, static_cast<char>('a' + i % 10)));
  }
  const std::string svg = scatter_svg(d, {});
  ASSERT_EQ(check_xml(svg).error, "");
  // Categories 9 and 10 (ci, cj: 2 points each) plus their two legend swatches are hollow.
  EXPECT_EQ(count_of(svg, "fill=\"#ffffff\" stroke="), 6);
}

TEST(Svg, LineChartSeriesMarkersGapsAndLegend) {
  std::vector<LineSeries> series(3);
  for (int s = 0; s < 3; ++s) {
    series[s].name = "model " + std::to_string(s);
    for (int l = 0; l <= 12; ++l) {
      series[s].x.push_back(l);
      series[s].y.push_back(s == 2 && l == 6 ? NAN : 0.5 + 0.03 * l - 0.1 * s);
    }
  }
  LineChartOptions o;
  o.title = "retrieval by layer";
  o.x_label = "layer";
  o.y_label = "accuracy";
  o.integer_x = true;
  o.reference = 0.001;
  o.reference_label = "chance";
  const std::string svg = line_chart_svg(series, o);
  const auto s = check_xml(svg);
  ASSERT_EQ(s.error, "") << svg;
  EXPECT_EQ(s.classes.at("series"), 4);  // the NaN splits series 2 in two
  EXPECT_EQ(s.classes.at("marker"), 38);
  EXPECT_EQ(s.classes.at("legend-swatch"), 3);
  EXPECT_EQ(s.classes.at("reference"), 1);
  EXPECT_TRUE(has_text(s, "model 2"));
  EXPECT_TRUE(has_text(s, "layer"));
  EXPECT_TRUE(has_text(s, "12"));  // integer tick at the last layer
}

TEST(Svg, BarChartWithErrorBarsAndChanceLine) {
  BarChartData d;
  d.categories = {"en", "de", "zh", "sw"};
  d.series = {{"mBERT", {0.81, 0.70, 0.68, 0.49}, {0.01, 0.02, 0.02, 0.03}},
              {"XLM-R", {0.85, 0.77, 0.74, 0.64}, {0.01, 0.01, 0.02, 0.02}}};
  BarChartOptions o;
  o.title = "XNLI accuracy";
  o.y_label = "accuracy";
  o.reference = 1.0 / 3.0;
  o.value_labels = true;
  const std::string svg = bar_chart_svg(d, o);
  const auto s = check_xml(svg);
  ASSERT_EQ(s.error, "") << svg;
  EXPECT_EQ(s.classes.at("bar"), 8);
  EXPECT_EQ(s.classes.at("errorbar"), 8);
  EXPECT_EQ(s.classes.at("reference"), 1);
  EXPECT_EQ(s.classes.at("legend-swatch"), 2);
  EXPECT_EQ(s.classes.at("category"), 4);
  EXPECT_TRUE(has_text(s, "chance"));
  EXPECT_TRUE(has_text(s, "0.81"));
  // The reference line is drawn at 1/3 of the 0..1 axis: y = bottom - height / 3.
  std::smatch m;
  ASSERT_TRUE(std::regex_search(svg, m,
                                std::regex("class=\"frame\" x=\"[0-9.]+\" y=\"([0-9.]+)\" "
                                           "width=\"[0-9.]+\" height=\"([0-9.]+)\"")));
  const double top = std::stod(m[1]), height = std::stod(m[2]);
  ASSERT_TRUE(
      std::regex_search(svg, m, std::regex("class=\"reference\" x1=\"[0-9.]+\" y1=\"([0-9.]+)\"")));
  EXPECT_NEAR(std::stod(m[1]), top + height * (1 - 1.0 / 3.0), 0.01);
  // A single series has no legend.
  d.series.pop_back();
  EXPECT_EQ(check_xml(bar_chart_svg(d, o)).classes.count("legend-swatch"), 0u);
  d.series[0].errors = {0.1};
  EXPECT_THROW(bar_chart_svg(d, o), UsageError);
}

}  // namespace
}  // namespace xlt::report
