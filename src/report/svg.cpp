// SVG figure writer, part 1: escaping, palettes, the element writer, scales/ticks/axes/legends
// (see svg_internal.h) and heatmaps. Scatter, line and bar charts are in svg_charts.cpp.
#include "xlt/report/svg.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <limits>

#include "report/svg_internal.h"
#include "xlt/core/error.h"

namespace xlt::report {
namespace {

constexpr std::array<const char*, 8> kOkabeIto = {"#0072B2", "#E69F00", "#009E73", "#D55E00",
                                                  "#CC79A7", "#56B4E9", "#F0E442", "#000000"};
// matplotlib's viridis sampled at 9 evenly spaced points.
constexpr std::array<unsigned, 9> kViridis = {0x440154, 0x472d7b, 0x3b528b, 0x2c728e, 0x21918c,
                                              0x28ae80, 0x5ec962, 0xaddc30, 0xfde725};
// ColorBrewer RdBu (7 classes), blue for low values.
constexpr std::array<unsigned, 7> kRdBu = {0x2166ac, 0x67a9cf, 0xd1e5f0, 0xf7f7f7,
                                           0xfddbc7, 0xef8a62, 0xb2182b};

template <size_t N>
std::string interpolate(const std::array<unsigned, N>& stops, double t) {
  if (!std::isfinite(t)) t = 0.0;
  t = std::clamp(t, 0.0, 1.0);
  const double pos = t * (N - 1);
  const size_t i = std::min(static_cast<size_t>(pos), N - 2);
  const double f = pos - static_cast<double>(i);
  auto channel = [&](int shift) {
    const double a = (stops[i] >> shift) & 0xff, b = (stops[i + 1] >> shift) & 0xff;
    return static_cast<int>(std::lround(a + f * (b - a)));
  };
  char buf[8];
  std::snprintf(buf, sizeof buf, "#%02x%02x%02x", channel(16), channel(8), channel(0));
  return buf;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xc0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xe0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else {
    out += static_cast<char>(0xf0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  }
}

// Decodes one UTF-8 sequence at s[i]; returns the code point (0xFFFD when invalid) and advances i.
uint32_t decode_utf8(std::string_view s, size_t& i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  int len = b0 < 0x80 ? 1 : (b0 >> 5) == 6 ? 2 : (b0 >> 4) == 14 ? 3 : (b0 >> 3) == 30 ? 4 : 0;
  if (len == 0 || i + len > s.size()) {
    ++i;
    return 0xfffd;
  }
  uint32_t cp = len == 1 ? b0 : b0 & (0x7f >> len);
  for (int k = 1; k < len; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xc0) != 0x80) {
      ++i;
      return 0xfffd;
    }
    cp = (cp << 6) | (b & 0x3f);
  }
  i += len;
  const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < min_cp[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0xfffd;
  return cp;
}

}  // namespace

std::string escape_xml(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    const uint32_t cp = decode_utf8(text, i);
    switch (cp) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        // XML 1.0 allows tab, LF, CR and everything from U+0020 except U+FFFE/U+FFFF.
        if ((cp < 0x20 && cp != '\t' && cp != '\n' && cp != '\r') || cp == 0xfffe || cp == 0xffff) {
          break;
        }
        append_utf8(out, cp);
    }
  }
  return out;
}

std::string category_color(size_t index) {
  return kOkabeIto[index % kOkabeIto.size()];
}

std::string colormap_color(ColorMap map, double t) {
  return map == ColorMap::Viridis ? interpolate(kViridis, t) : interpolate(kRdBu, t);
}

namespace detail {

std::string num(double v) {
  if (!std::isfinite(v)) return "0";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.2f", v);
  std::string s = buf;
  while (!s.empty() && s.back() == '0') s.pop_back();
  if (!s.empty() && s.back() == '.') s.pop_back();
  if (s == "-0") s = "0";
  return s;
}

size_t utf8_length(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xc0) != 0x80;
  return n;
}

double text_width(std::string_view s, double size) {
  return static_cast<double>(utf8_length(s)) * size * 0.6;
}

std::string truncate_text(const std::string& s, size_t max_chars) {
  if (utf8_length(s) <= max_chars) return s;
  size_t chars = 0, i = 0;
  for (; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xc0) != 0x80 && chars++ == max_chars - 1) break;
  }
  return s.substr(0, i) + "\u2026";
}

SvgDoc::SvgDoc(double width, double height) {
  out_ =
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" "
      "width=\"" +
      num(width) + "\" height=\"" + num(height) + "\" viewBox=\"0 0 " + num(width) + " " +
      num(height) + "\" font-family=\"" + kFont + "\" font-size=\"" + num(kFontSize) + "\">\n";
  rect(0, 0, width, height, "#ffffff", "background");
}

namespace {
std::string title_element(const std::string& tooltip) {
  return tooltip.empty() ? "" : "<title>" + escape_xml(tooltip) + "</title>";
}
std::string class_attr(const std::string& cls) {
  return cls.empty() ? "" : " class=\"" + escape_xml(cls) + "\"";
}
}  // namespace

void SvgDoc::rect(double x, double y, double w, double h, const std::string& fill,
                  const std::string& cls, const std::string& extra, const std::string& tooltip) {
  out_ += "<rect" + class_attr(cls) + " x=\"" + num(x) + "\" y=\"" + num(y) + "\" width=\"" +
          num(std::max(w, 0.0)) + "\" height=\"" + num(std::max(h, 0.0)) + "\" fill=\"" +
          escape_xml(fill) + "\"" + extra;
  out_ += tooltip.empty() ? "/>\n" : ">" + title_element(tooltip) + "</rect>\n";
}

void SvgDoc::circle(double cx, double cy, double r, const std::string& fill,
                    const std::string& stroke, const std::string& cls, double opacity,
                    const std::string& tooltip) {
  out_ += "<circle" + class_attr(cls) + " cx=\"" + num(cx) + "\" cy=\"" + num(cy) + "\" r=\"" +
          num(r) + "\" fill=\"" + escape_xml(fill) + "\"";
  if (!stroke.empty()) out_ += " stroke=\"" + escape_xml(stroke) + "\" stroke-width=\"1.2\"";
  if (opacity < 1.0) out_ += " opacity=\"" + num(opacity) + "\"";
  out_ += tooltip.empty() ? "/>\n" : ">" + title_element(tooltip) + "</circle>\n";
}

void SvgDoc::line(double x1, double y1, double x2, double y2, const std::string& stroke,
                  double width, const std::string& dash, const std::string& cls) {
  out_ += "<line" + class_attr(cls) + " x1=\"" + num(x1) + "\" y1=\"" + num(y1) + "\" x2=\"" +
          num(x2) + "\" y2=\"" + num(y2) + "\" stroke=\"" + escape_xml(stroke) +
          "\" stroke-width=\"" + num(width) + "\"";
  if (!dash.empty()) out_ += " stroke-dasharray=\"" + escape_xml(dash) + "\"";
  out_ += "/>\n";
}

void SvgDoc::polyline(const std::vector<std::pair<double, double>>& points,
                      const std::string& stroke, double width, const std::string& dash,
                      const std::string& cls) {
  std::string pts;
  for (const auto& [x, y] : points) {
    if (!pts.empty()) pts += ' ';
    pts += num(x) + "," + num(y);
  }
  out_ += "<polyline" + class_attr(cls) + " points=\"" + pts + "\" fill=\"none\" stroke=\"" +
          escape_xml(stroke) + "\" stroke-width=\"" + num(width) + "\" stroke-linejoin=\"round\"";
  if (!dash.empty()) out_ += " stroke-dasharray=\"" + escape_xml(dash) + "\"";
  out_ += "/>\n";
}

void SvgDoc::text(double x, double y, const std::string& s, double size, const std::string& anchor,
                  double rotate, bool bold, const std::string& fill, const std::string& cls,
                  bool halo) {
  out_ += "<text" + class_attr(cls) + " x=\"" + num(x) + "\" y=\"" + num(y) + "\"";
  if (size != kFontSize) out_ += " font-size=\"" + num(size) + "\"";
  if (anchor != "start") out_ += " text-anchor=\"" + anchor + "\"";
  if (bold) out_ += " font-weight=\"bold\"";
  out_ += " fill=\"" + escape_xml(fill) + "\"";
  if (halo) out_ += " stroke=\"#ffffff\" stroke-width=\"3\" paint-order=\"stroke\"";
  if (rotate != 0.0) {
    out_ += " transform=\"rotate(" + num(rotate) + " " + num(x) + " " + num(y) + ")\"";
  }
  out_ += ">" + escape_xml(s) + "</text>\n";
}

std::string SvgDoc::finish() {
  return out_ + "</svg>\n";
}

std::vector<double> nice_ticks(double lo, double hi, int target) {
  if (!std::isfinite(lo) || !std::isfinite(hi)) return {};
  if (hi < lo) std::swap(lo, hi);
  if (hi == lo) return {lo};
  const double raw = (hi - lo) / std::max(1, target - 1);
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double f = raw / mag;
  const double step = (f <= 1.0 ? 1.0 : f <= 2.0 ? 2.0 : f <= 5.0 ? 5.0 : 10.0) * mag;
  std::vector<double> ticks;
  const double first = std::ceil(lo / step - 1e-9) * step;
  for (double v = first; v <= hi + step * 1e-9; v += step) {
    ticks.push_back(std::fabs(v) < step * 1e-9 ? 0.0 : v);
    if (ticks.size() > 100) break;
  }
  return ticks;
}

void nice_range(double& lo, double& hi, int target) {
  if (!std::isfinite(lo) || !std::isfinite(hi)) {
    lo = 0.0;
    hi = 1.0;
  }
  if (hi == lo) {
    const double pad = lo == 0.0 ? 1.0 : std::fabs(lo) * 0.1;
    lo -= pad;
    hi += pad;
  }
  const std::vector<double> t = nice_ticks(lo, hi, target);
  if (t.size() < 2) return;
  const double step = t[1] - t[0];
  lo = std::min(lo, t.front() > lo ? t.front() - step : t.front());
  hi = std::max(hi, t.back() < hi ? t.back() + step : t.back());
}

std::string tick_label(double v, const std::vector<double>& ticks) {
  int decimals = 0;
  if (ticks.size() >= 2) {
    const double step = std::fabs(ticks[1] - ticks[0]);
    decimals = std::clamp(static_cast<int>(std::ceil(-std::log10(step) - 1e-9)), 0, 8);
  } else if (v != std::floor(v)) {
    decimals = 2;
  }
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  std::string s = buf;
  if (s.find_first_not_of("-0.") == std::string::npos)
    s = decimals ? "0." + std::string(decimals, '0') : "0";
  return s;
}

void draw_axes(SvgDoc& doc, const PlotArea& a, const Scale& xs, const Scale& ys,
               const std::vector<double>& x_ticks, const std::vector<double>& y_ticks,
               const std::string& x_label, const std::string& y_label) {
  for (double t : y_ticks) {
    const double y = ys(t);
    doc.line(a.left, y, a.right(), y, kGridColor, 1.0, "", "grid");
    doc.line(a.left - 4, y, a.left, y, kAxisColor);
    doc.text(a.left - 7, y + 4, tick_label(t, y_ticks), kTickSize, "end");
  }
  for (double t : x_ticks) {
    const double x = xs(t);
    doc.line(x, a.bottom(), x, a.bottom() + 4, kAxisColor);
    doc.text(x, a.bottom() + 17, tick_label(t, x_ticks), kTickSize, "middle");
  }
  doc.rect(a.left, a.top, a.width, a.height, "none", "frame",
           " stroke=\"" + std::string(kAxisColor) + "\" stroke-width=\"1\"");
  if (!x_label.empty())
    doc.text(a.left + a.width / 2, a.bottom() + 38, x_label, kFontSize, "middle");
  if (!y_label.empty()) {
    double widest = 0;
    for (double t : y_ticks)
      widest = std::max(widest, text_width(tick_label(t, y_ticks), kTickSize));
    doc.text(a.left - widest - 18, a.top + a.height / 2, y_label, kFontSize, "middle", -90);
  }
}

double legend_width(const std::vector<LegendEntry>& entries, const std::string& title) {
  double w = text_width(title, kFontSize);
  for (const auto& e : entries) w = std::max(w, 26 + text_width(e.name, kFontSize));
  return w + 16;
}

void draw_legend(SvgDoc& doc, double x, double y, const std::vector<LegendEntry>& entries,
                 const std::string& title, LegendKind kind) {
  double row = y;
  if (!title.empty()) {
    doc.text(x, row + 12, title, kFontSize, "start", 0, true);
    row += 20;
  }
  for (const auto& e : entries) {
    const double cy = row + 8;
    switch (kind) {
      case LegendKind::Circle:
        doc.circle(x + 8, cy, 5, e.hollow ? "#ffffff" : e.color, e.hollow ? e.color : "",
                   "legend-swatch");
        break;
      case LegendKind::Square:
        doc.rect(x + 2, cy - 6, 12, 12, e.color, "legend-swatch");
        break;
      case LegendKind::Line:
        doc.line(x, cy, x + 18, cy, e.color, 2.5, e.dash, "legend-swatch");
        break;
    }
    doc.text(x + 24, cy + 4, e.name, kFontSize);
    row += 19;
  }
}

std::string series_dash(size_t index) {
  static const std::array<const char*, 3> dashes = {"", "6 3", "2 2"};
  return dashes[(index / kOkabeIto.size()) % dashes.size()];
}

}  // namespace detail

// ----- Heatmaps ----------------------------------------------------------------------------

std::string heatmap_svg(const std::vector<HeatmapPanel>& panels, const HeatmapOptions& o) {
  using namespace detail;
  if (panels.empty()) throw UsageError("heatmap_svg: no panels");
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  for (size_t p = 0; p < panels.size(); ++p) {
    const auto& pn = panels[p];
    const std::string where = "heatmap_svg: panel " + std::to_string(p) + " ('" + pn.title + "')";
    if (pn.rows < 1 || pn.cols < 1) throw UsageError(where + " has no cells");
    if (static_cast<int64_t>(pn.values.size()) != pn.rows * pn.cols) {
      throw UsageError(where + ": " + std::to_string(pn.values.size()) + " values for " +
                       std::to_string(pn.rows) + " x " + std::to_string(pn.cols) + " cells");
    }
    if (!pn.row_labels.empty() && static_cast<int64_t>(pn.row_labels.size()) != pn.rows) {
      throw UsageError(where + ": " + std::to_string(pn.row_labels.size()) + " row labels for " +
                       std::to_string(pn.rows) + " rows");
    }
    if (!pn.col_labels.empty() && static_cast<int64_t>(pn.col_labels.size()) != pn.cols) {
      throw UsageError(where + ": " + std::to_string(pn.col_labels.size()) + " column labels for " +
                       std::to_string(pn.cols) + " columns");
    }
    for (double v : pn.values) {
      if (std::isfinite(v)) {
        lo = std::min(lo, v);
        hi = std::max(hi, v);
      }
    }
  }
  if (!std::isfinite(lo)) lo = hi = 0.0;
  if (o.colormap == ColorMap::Diverging) {
    const double m = std::max(std::fabs(lo), std::fabs(hi));
    lo = -m;
    hi = m;
  }
  lo = o.vmin.value_or(lo);
  hi = o.vmax.value_or(hi);
  if (hi <= lo) hi = lo + 1.0;

  constexpr size_t kMaxLabel = 24;
  const double cell = o.cell_size, label_size = std::clamp(cell * 0.65, 9.0, kTickSize);
  double row_label_w = 0, col_label_h = 0, max_h = 0;
  for (const auto& pn : panels) {
    for (const auto& l : pn.row_labels)
      row_label_w = std::max(row_label_w, text_width(truncate_text(l, kMaxLabel), label_size) + 6);
    for (const auto& l : pn.col_labels)
      col_label_h = std::max(col_label_h, text_width(truncate_text(l, kMaxLabel), label_size) + 6);
    max_h = std::max(max_h, pn.rows * cell);
  }
  const size_t per_row =
      o.panels_per_row > 0 ? static_cast<size_t>(o.panels_per_row) : panels.size();
  const size_t grid_rows = (panels.size() + per_row - 1) / per_row;
  const double gap = 24, panel_title_h = 22, x_label_h = o.x_label.empty() ? 0 : 22;
  const double y_label_w = o.y_label.empty() ? 0 : 24;
  std::vector<double> col_w(per_row, 0.0);
  for (size_t p = 0; p < panels.size(); ++p)
    col_w[p % per_row] = std::max(col_w[p % per_row], row_label_w + panels[p].cols * cell);
  const double band_h = panel_title_h + max_h + col_label_h + x_label_h + gap;
  double grid_w = 0;
  for (double w : col_w) grid_w += w + gap;
  const double top = o.title.empty() ? 12 : 40, left = 12 + y_label_w;
  const double bar_w = 14, bar_h = std::max(120.0, std::min(max_h, 320.0));
  const double bar_x = left + grid_w + 8;
  const double width = bar_x + bar_w + 60 + (o.colorbar_label.empty() ? 0 : 22);
  const double height = top + grid_rows * band_h;

  SvgDoc doc(width, height);
  if (!o.title.empty()) doc.text(width / 2, 26, o.title, kTitleSize, "middle", 0, true);
  auto color = [&](double v) {
    return std::isfinite(v) ? colormap_color(o.colormap, (v - lo) / (hi - lo)) : kMissingColor;
  };
  for (size_t p = 0; p < panels.size(); ++p) {
    const auto& pn = panels[p];
    double x0 = left;
    for (size_t c = 0; c < p % per_row; ++c) x0 += col_w[c] + gap;
    const double y_band = top + static_cast<double>(p / per_row) * band_h;
    const double gx = x0 + row_label_w, gy = y_band + panel_title_h;
    if (!pn.title.empty()) {
      doc.text(gx + pn.cols * cell / 2, y_band + 15, pn.title, kFontSize, "middle", 0, true);
    }
    if (!o.y_label.empty() && p % per_row == 0) {
      doc.text(left - 12, gy + pn.rows * cell / 2, o.y_label, kFontSize, "middle", -90);
    }
    for (int64_t r = 0; r < pn.rows; ++r) {
      for (int64_t c = 0; c < pn.cols; ++c) {
        const double v = pn.values[static_cast<size_t>(r * pn.cols + c)];
        std::string tip;
        if (o.cell_tooltips) {
          const std::string rl =
              pn.row_labels.empty() ? std::to_string(r) : pn.row_labels[static_cast<size_t>(r)];
          const std::string cl =
              pn.col_labels.empty() ? std::to_string(c) : pn.col_labels[static_cast<size_t>(c)];
          char val[32];
          std::snprintf(val, sizeof val, "%.4g", v);
          tip = rl + " \u2192 " + cl + ": " + (std::isfinite(v) ? val : "missing");
        }
        doc.rect(gx + c * cell, gy + r * cell, cell, cell, color(v), "cell", "", tip);
        if (o.annotate && std::isfinite(v)) {
          const double t = (v - lo) / (hi - lo);
          const bool dark = o.colormap == ColorMap::Viridis ? t < 0.55 : std::fabs(t - 0.5) > 0.3;
          char val[32];
          std::snprintf(val, sizeof val, "%.2f", v);
          doc.text(gx + (c + 0.5) * cell, gy + (r + 0.5) * cell + 3.5, val,
                   std::max(8.0, cell * 0.3), "middle", 0, false, dark ? "#ffffff" : "#000000",
                   "value");
        }
      }
    }
    for (size_t r = 0; r < pn.row_labels.size(); ++r) {
      doc.text(gx - 4, gy + (r + 0.5) * cell + label_size * 0.35,
               truncate_text(pn.row_labels[r], kMaxLabel), label_size, "end", 0, false, kAxisColor,
               "row-label");
    }
    const double gb = gy + pn.rows * cell;
    for (size_t c = 0; c < pn.col_labels.size(); ++c) {
      const double cx = gx + (c + 0.5) * cell + label_size * 0.35;
      doc.text(cx, gb + 4, truncate_text(pn.col_labels[c], kMaxLabel), label_size, "end", -90,
               false, kAxisColor, "col-label");
    }
    if (!o.x_label.empty()) {
      doc.text(gx + pn.cols * cell / 2, gb + col_label_h + 16, o.x_label, kFontSize, "middle");
    }
  }
  // Colour bar: a vertical gradient, low values at the bottom.
  std::string defs =
      "<defs><linearGradient id=\"xlt-colorbar\" x1=\"0\" y1=\"1\" x2=\"0\" y2=\"0\">";
  for (int s = 0; s <= 16; ++s) {
    defs += "<stop offset=\"" + num(s / 16.0) + "\" stop-color=\"" +
            colormap_color(o.colormap, s / 16.0) + "\"/>";
  }
  doc.raw(defs + "</linearGradient></defs>\n");
  const double bar_y = top + panel_title_h;
  doc.rect(bar_x, bar_y, bar_w, bar_h, "url(#xlt-colorbar)", "colorbar",
           " stroke=\"" + std::string(kAxisColor) + "\" stroke-width=\"0.5\"");
  const Scale bar_scale{lo, hi, bar_y + bar_h, bar_y};
  const std::vector<double> ticks = nice_ticks(lo, hi, 5);
  for (double t : ticks) {
    const double y = bar_scale(t);
    doc.line(bar_x + bar_w, y, bar_x + bar_w + 4, y, kAxisColor);
    doc.text(bar_x + bar_w + 7, y + 4, tick_label(t, ticks), kTickSize);
  }
  if (!o.colorbar_label.empty()) {
    doc.text(bar_x + bar_w + 58, bar_y + bar_h / 2, o.colorbar_label, kFontSize, "middle", 90);
  }
  return doc.finish();
}

}  // namespace xlt::report
