// SVG figures for xlt's reports (attention maps, t-SNE maps, per-layer curves, accuracy bars),
// written as plain SVG text so reports need no plotting library: each function takes the data
// plus an options struct and returns a complete, standalone SVG document (valid XML; all text is
// escaped). No libtorch.
//
// Style: a colour-blind-friendly palette (Okabe & Ito 2008) for categories and series, viridis
// (or ColorBrewer's RdBu for signed values) for heatmaps, sans-serif text at >= 11 px, a white
// background. Elements carry a class ("cell", "point", "bar", "series", "marker", "errorbar",
// "legend-swatch", "colorbar", "reference") so figures can be restyled or inspected.
//
// Usage:
//   xlt::report::ScatterData d;  d.x = ...; d.y = ...; d.category = langs;
//   xlt::report::ScatterOptions o;  o.title = "layer 8";
//   xlt::write_file_atomic("tsne.svg", xlt::report::scatter_svg(d, o));
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace xlt::report {

// Escapes &, <, >, " and ' for XML text and attribute values, and drops characters XML 1.0
// forbids (C0 controls other than tab/newline/CR). Invalid UTF-8 bytes become U+FFFD.
std::string escape_xml(std::string_view text);

// Colour of the i-th category or series: the 8 Okabe-Ito colours (blue, orange, green,
// vermillion, reddish purple, sky blue, yellow, black), repeating after 8; charts then vary the
// marker (hollow points) or dash pattern so up to 16 stay distinguishable.
std::string category_color(size_t index);

enum class ColorMap {
  Viridis,    // sequential (attention weights, probabilities)
  Diverging,  // RdBu, blue < 0 < red, for signed values (differences); centred on 0 by default
};
// "#rrggbb" for t in [0, 1] (clamped).
std::string colormap_color(ColorMap map, double t);

// ----- Heatmaps (attention maps) ----------------------------------------------------------

struct HeatmapPanel {
  std::string title;  // e.g. "layer 3, head 5"
  int64_t rows = 0, cols = 0;
  std::vector<double> values;           // [rows, cols] row-major; NaN = missing (grey)
  std::vector<std::string> row_labels;  // y axis, top to bottom (e.g. query tokens); may be empty
  std::vector<std::string> col_labels;  // x axis, left to right (e.g. key tokens); may be empty
};

struct HeatmapOptions {
  std::string title;           // above all panels
  std::string x_label;         // e.g. "key token"
  std::string y_label;         // e.g. "query token"
  std::string colorbar_label;  // e.g. "attention weight"
  ColorMap colormap = ColorMap::Viridis;
  // Shared colour scale for all panels; by default the min and max over all panels (Diverging:
  // symmetric around 0).
  std::optional<double> vmin, vmax;
  double cell_size = 18.0;    // px per cell
  int panels_per_row = 0;     // 0 = all panels side by side
  bool annotate = false;      // print each value in its cell (small maps)
  bool cell_tooltips = true;  // <title> "row -> col: value" on every cell
};

// One or more heatmaps side by side with a shared colour scale and one colour bar. Throws
// xlt::UsageError when a panel's values/labels do not match rows x cols.
std::string heatmap_svg(const std::vector<HeatmapPanel>& panels, const HeatmapOptions& options);

// ----- Scatter plots (t-SNE maps) ---------------------------------------------------------

struct ScatterData {
  std::vector<double> x, y;
  std::vector<std::string> category;  // optional, one per point: colour + legend entry
  std::vector<std::string> label;     // optional, one per point: text drawn beside it ("" = none)
  std::vector<std::string> hover;     // optional, one per point: <title> tooltip
};

struct ScatterOptions {
  std::string title, x_label, y_label;
  std::string legend_title;                 // e.g. "language"
  std::vector<std::string> category_order;  // legend order; default: sorted category names
  double width = 720.0, height = 560.0;     // whole figure, px
  double point_radius = 3.0;
  double opacity = 0.75;
  bool equal_aspect = true;  // same scale on both axes (t-SNE distances are isotropic)
  bool show_ticks = true;    // t-SNE coordinates mean little; tsne.svg hides them
};

std::string scatter_svg(const ScatterData& data, const ScatterOptions& options);

// ----- Line charts (per-layer curves) -------------------------------------------------------

struct LineSeries {
  std::string name;
  std::vector<double> x, y;  // same length; a non-finite y breaks the line
};

struct LineChartOptions {
  std::string title, x_label, y_label;
  double width = 720.0, height = 440.0;
  std::optional<double> y_min, y_max;  // default: data range (padded)
  bool markers = true;
  bool integer_x = false;           // ticks only at integers (layers)
  std::optional<double> reference;  // dashed horizontal line (e.g. chance level)
  std::string reference_label;
};

std::string line_chart_svg(const std::vector<LineSeries>& series, const LineChartOptions& options);

// ----- Bar charts (accuracies with error bars) --------------------------------------------

struct BarSeries {
  std::string name;            // legend entry (legend shown when there are >= 2 series)
  std::vector<double> values;  // one per category
  std::vector<double> errors;  // optional, one per category: symmetric half-width (e.g. 1.96 SE)
};

struct BarChartData {
  std::vector<std::string> categories;  // x axis groups (e.g. languages)
  std::vector<BarSeries> series;        // bars within each group (e.g. models)
};

struct BarChartOptions {
  std::string title, x_label, y_label;
  double width = 720.0, height = 440.0;
  std::optional<double> y_min, y_max;  // default: 0 (or the minimum if negative) .. max + error
  std::optional<double> reference;     // dashed horizontal line, e.g. chance level 1/3
  std::string reference_label = "chance";
  bool value_labels = false;  // print each value above its bar
};

std::string bar_chart_svg(const BarChartData& data, const BarChartOptions& options);

}  // namespace xlt::report
