// Private building blocks of the SVG figure writer: an element writer that escapes every text
// and formats numbers locale-independently, linear scales with "nice" ticks, text-width
// estimates for layout, axes and legends shared by all chart types.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace xlt::report::detail {

inline constexpr const char* kFont = "DejaVu Sans, Helvetica, Arial, sans-serif";
inline constexpr double kFontSize = 12.0;
inline constexpr double kTitleSize = 15.0;
inline constexpr double kTickSize = 11.0;
inline constexpr const char* kAxisColor = "#333333";
inline constexpr const char* kGridColor = "#e5e5e5";
inline constexpr const char* kMissingColor = "#d9d9d9";

// A coordinate or size with at most 2 decimals, trailing zeros trimmed ("12.5", "3").
std::string num(double v);
// Number of Unicode code points (for width estimates of token labels).
size_t utf8_length(std::string_view s);
// Rough rendered width of `s` at `size` px in a sans-serif font.
double text_width(std::string_view s, double size);
// `s` shortened to at most `max_chars` code points with a trailing ellipsis.
std::string truncate_text(const std::string& s, size_t max_chars);

class SvgDoc {
 public:
  SvgDoc(double width, double height);

  void rect(double x, double y, double w, double h, const std::string& fill,
            const std::string& cls = "", const std::string& extra = "",
            const std::string& tooltip = "");
  void circle(double cx, double cy, double r, const std::string& fill, const std::string& stroke,
              const std::string& cls, double opacity = 1.0, const std::string& tooltip = "");
  void line(double x1, double y1, double x2, double y2, const std::string& stroke,
            double width = 1.0, const std::string& dash = "", const std::string& cls = "");
  void polyline(const std::vector<std::pair<double, double>>& points, const std::string& stroke,
                double width, const std::string& dash, const std::string& cls);
  // anchor: "start" | "middle" | "end"; rotate: degrees around (x, y); halo: a white outline
  // that keeps the text readable over bars and lines.
  void text(double x, double y, const std::string& s, double size = kFontSize,
            const std::string& anchor = "start", double rotate = 0.0, bool bold = false,
            const std::string& fill = kAxisColor, const std::string& cls = "", bool halo = false);
  // Raw markup (already escaped); used for <defs>.
  void raw(const std::string& markup) { out_ += markup; }
  std::string finish();

 private:
  std::string out_;
};

// Maps [d0, d1] onto [r0, r1] linearly.
struct Scale {
  double d0 = 0, d1 = 1, r0 = 0, r1 = 1;
  double operator()(double v) const {
    return d1 == d0 ? 0.5 * (r0 + r1) : r0 + (v - d0) / (d1 - d0) * (r1 - r0);
  }
};

// Ticks at multiples of 1, 2 or 5 x 10^k covering [lo, hi] with about `target` ticks.
std::vector<double> nice_ticks(double lo, double hi, int target);
// Extends [lo, hi] outwards to the nearest nice ticks (used for axis ranges).
void nice_range(double& lo, double& hi, int target);
// Tick text with as many decimals as the tick step needs.
std::string tick_label(double v, const std::vector<double>& ticks);

struct PlotArea {
  double left, top, width, height;
  double right() const { return left + width; }
  double bottom() const { return top + height; }
};

// Frame, grid lines, ticks and axis labels of a chart. x ticks are skipped when `x_ticks` is empty.
void draw_axes(SvgDoc& doc, const PlotArea& area, const Scale& xs, const Scale& ys,
               const std::vector<double>& x_ticks, const std::vector<double>& y_ticks,
               const std::string& x_label, const std::string& y_label);

struct LegendEntry {
  std::string name;
  std::string color;
  bool hollow = false;  // hollow circle (categories 9-16)
  std::string dash;     // stroke-dasharray for line series
};
enum class LegendKind { Circle, Square, Line };
// Legend box width for these entries.
double legend_width(const std::vector<LegendEntry>& entries, const std::string& title);
void draw_legend(SvgDoc& doc, double x, double y, const std::vector<LegendEntry>& entries,
                 const std::string& title, LegendKind kind);

// Dash pattern for the i-th series: solid for the first 8 colours, dashed for the next 8, ...
std::string series_dash(size_t index);

}  // namespace xlt::report::detail
