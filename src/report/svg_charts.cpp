// SVG figure writer, part 2: scatter plots (t-SNE maps), line charts (per-layer curves) and bar
// charts with error bars and a reference line (accuracy vs chance). Shared drawing code is in
// svg.cpp / svg_internal.h.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <set>

#include "report/svg_internal.h"
#include "xlt/core/error.h"
#include "xlt/report/svg.h"

namespace xlt::report {
namespace {

using namespace detail;

struct Range {
  double lo = std::numeric_limits<double>::infinity();
  double hi = -std::numeric_limits<double>::infinity();
  void add(double v) {
    if (std::isfinite(v)) {
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
  }
  bool empty() const { return !(lo <= hi); }
};

std::string format_value(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

// Width taken by y tick labels and the y axis label left of a plot.
double y_axis_width(const std::vector<double>& ticks, bool has_label) {
  double w = 0;
  for (double t : ticks) w = std::max(w, text_width(tick_label(t, ticks), kTickSize));
  return w + 14 + (has_label ? 24 : 0);
}

}  // namespace

// ----- Scatter -------------------------------------------------------------------------------

std::string scatter_svg(const ScatterData& d, const ScatterOptions& o) {
  const size_t n = d.x.size();
  if (d.y.size() != n) {
    throw UsageError("scatter_svg: " + std::to_string(n) + " x values but " +
                     std::to_string(d.y.size()) + " y values");
  }
  auto check = [&](const std::vector<std::string>& v, const char* what) {
    if (!v.empty() && v.size() != n) {
      throw UsageError(std::string("scatter_svg: ") + what + " has " + std::to_string(v.size()) +
                       " entries for " + std::to_string(n) + " points");
    }
  };
  check(d.category, "category");
  check(d.label, "label");
  check(d.hover, "hover");

  // Legend order: the requested order first, then the remaining categories sorted.
  std::vector<std::string> cats;
  std::map<std::string, size_t> cat_index;
  if (!d.category.empty()) {
    std::set<std::string> present(d.category.begin(), d.category.end());
    for (const auto& c : o.category_order) {
      if (present.count(c) && !cat_index.count(c)) {
        cat_index[c] = cats.size();
        cats.push_back(c);
      }
    }
    for (const auto& c : present) {
      if (!cat_index.count(c)) {
        cat_index[c] = cats.size();
        cats.push_back(c);
      }
    }
  }
  std::vector<LegendEntry> legend;
  for (size_t i = 0; i < cats.size(); ++i) {
    legend.push_back({cats[i], category_color(i), (i / 8) % 2 == 1, ""});
  }

  Range xr, yr;
  for (size_t i = 0; i < n; ++i) {
    if (std::isfinite(d.x[i]) && std::isfinite(d.y[i])) {
      xr.add(d.x[i]);
      yr.add(d.y[i]);
    }
  }
  if (xr.empty()) xr = {0.0, 1.0};
  if (yr.empty()) yr = {0.0, 1.0};
  double x0 = xr.lo, x1 = xr.hi, y0 = yr.lo, y1 = yr.hi;
  nice_range(x0, x1, 6);
  nice_range(y0, y1, 6);
  const std::vector<double> xt = o.show_ticks ? nice_ticks(x0, x1, 6) : std::vector<double>{};
  const std::vector<double> yt = o.show_ticks ? nice_ticks(y0, y1, 6) : std::vector<double>{};

  const double legend_w = legend.empty() ? 0 : legend_width(legend, o.legend_title) + 12;
  PlotArea a;
  a.left =
      12 + (o.show_ticks ? y_axis_width(yt, !o.y_label.empty()) : (o.y_label.empty() ? 8 : 30));
  a.top = o.title.empty() ? 14 : 42;
  a.width = std::max(80.0, o.width - a.left - legend_w - 16);
  a.height = std::max(80.0, o.height - a.top - (o.show_ticks || !o.x_label.empty() ? 48 : 14));
  Scale xs{x0, x1, a.left, a.right()}, ys{y0, y1, a.bottom(), a.top};
  if (o.equal_aspect && !o.show_ticks) {
    // Same px per unit on both axes, centred; tick-less maps only, so ticks stay at the frame.
    const double k =
        std::min(a.width / (xr.hi - xr.lo + 1e-12), a.height / (yr.hi - yr.lo + 1e-12)) * 0.94;
    const double cx = 0.5 * (xr.lo + xr.hi), cy = 0.5 * (yr.lo + yr.hi);
    xs = {cx - a.width / (2 * k), cx + a.width / (2 * k), a.left, a.right()};
    ys = {cy - a.height / (2 * k), cy + a.height / (2 * k), a.bottom(), a.top};
  } else if (o.equal_aspect) {
    const double k = std::min(a.width / (x1 - x0), a.height / (y1 - y0));
    a.width = k * (x1 - x0);
    a.height = k * (y1 - y0);
    xs = {x0, x1, a.left, a.right()};
    ys = {y0, y1, a.bottom(), a.top};
  }

  const double width = a.right() + legend_w + 16;
  const double height = a.bottom() + (o.show_ticks || !o.x_label.empty() ? 48 : 14);
  SvgDoc doc(width, height);
  if (!o.title.empty()) doc.text(width / 2, 26, o.title, kTitleSize, "middle", 0, true);
  draw_axes(doc, a, xs, ys, xt, yt, o.x_label, o.y_label);
  for (size_t i = 0; i < n; ++i) {
    if (!std::isfinite(d.x[i]) || !std::isfinite(d.y[i])) continue;
    std::string fill = category_color(0), stroke;
    if (!d.category.empty()) {
      const size_t c = cat_index[d.category[i]];
      fill = category_color(c);
      if ((c / 8) % 2 == 1) {
        stroke = fill;
        fill = "#ffffff";
      }
    }
    doc.circle(xs(d.x[i]), ys(d.y[i]), o.point_radius, fill, stroke, "point", o.opacity,
               d.hover.empty() ? "" : d.hover[i]);
  }
  if (!d.label.empty()) {
    for (size_t i = 0; i < n; ++i) {
      if (d.label[i].empty() || !std::isfinite(d.x[i]) || !std::isfinite(d.y[i])) continue;
      doc.text(xs(d.x[i]) + o.point_radius + 2, ys(d.y[i]) + 4, d.label[i], kTickSize, "start", 0,
               false, kAxisColor, "point-label");
    }
  }
  if (!legend.empty())
    draw_legend(doc, a.right() + 18, a.top, legend, o.legend_title, LegendKind::Circle);
  return doc.finish();
}

// ----- Line chart ----------------------------------------------------------------------------

std::string line_chart_svg(const std::vector<LineSeries>& series, const LineChartOptions& o) {
  Range xr, yr;
  for (const auto& s : series) {
    if (s.x.size() != s.y.size()) {
      throw UsageError("line_chart_svg: series '" + s.name + "' has " + std::to_string(s.x.size()) +
                       " x and " + std::to_string(s.y.size()) + " y values");
    }
    for (size_t i = 0; i < s.x.size(); ++i) {
      if (std::isfinite(s.x[i]) && std::isfinite(s.y[i])) {
        xr.add(s.x[i]);
        yr.add(s.y[i]);
      }
    }
  }
  if (o.reference) yr.add(*o.reference);
  if (xr.empty()) xr = {0.0, 1.0};
  if (yr.empty()) yr = {0.0, 1.0};
  double y0 = o.y_min.value_or(yr.lo), y1 = o.y_max.value_or(yr.hi);
  if (!o.y_min || !o.y_max) {
    double lo = y0, hi = y1;
    nice_range(lo, hi, 6);
    if (!o.y_min) y0 = lo;
    if (!o.y_max) y1 = hi;
  }
  if (y1 <= y0) y1 = y0 + 1.0;
  double x0 = xr.lo, x1 = xr.hi;
  if (x1 == x0) {
    x0 -= 1;
    x1 += 1;
  }
  std::vector<double> xt = nice_ticks(x0, x1, 8);
  if (o.integer_x) {
    xt.erase(std::remove_if(xt.begin(), xt.end(), [](double v) { return v != std::floor(v); }),
             xt.end());
    if (xt.size() < 2 && x1 - x0 <= 20) {
      xt.clear();
      for (double v = std::ceil(x0); v <= x1; v += 1) xt.push_back(v);
    }
  }
  const std::vector<double> yt = nice_ticks(y0, y1, 6);

  std::vector<LegendEntry> legend;
  bool named = false;
  for (size_t i = 0; i < series.size(); ++i) {
    legend.push_back({series[i].name, category_color(i), false, series_dash(i)});
    named = named || !series[i].name.empty();
  }
  if (!named) legend.clear();
  const double legend_w = legend.empty() ? 0 : legend_width(legend, "") + 12;
  PlotArea a;
  a.left = 12 + y_axis_width(yt, !o.y_label.empty());
  a.top = o.title.empty() ? 16 : 42;
  a.width = std::max(80.0, o.width - a.left - legend_w - 20);
  a.height = std::max(80.0, o.height - a.top - 52);
  const Scale xs{x0, x1, a.left, a.right()}, ys{y0, y1, a.bottom(), a.top};

  SvgDoc doc(o.width, a.bottom() + 52);
  if (!o.title.empty()) doc.text(o.width / 2, 26, o.title, kTitleSize, "middle", 0, true);
  draw_axes(doc, a, xs, ys, xt, yt, o.x_label, o.y_label);
  if (o.reference && *o.reference >= y0 && *o.reference <= y1) {
    const double y = ys(*o.reference);
    doc.line(a.left, y, a.right(), y, "#555555", 1.2, "5 4", "reference");
    if (!o.reference_label.empty())
      doc.text(a.right() - 4, y - 5, o.reference_label, kTickSize, "end", 0, false, kAxisColor,
               "reference-label", true);
  }
  for (size_t s = 0; s < series.size(); ++s) {
    const auto& ser = series[s];
    const std::string color = category_color(s), dash = series_dash(s);
    std::vector<std::pair<double, double>> run;
    auto flush = [&] {
      if (run.size() >= 2) doc.polyline(run, color, 2.0, dash, "series");
      run.clear();
    };
    for (size_t i = 0; i < ser.x.size(); ++i) {
      if (!std::isfinite(ser.x[i]) || !std::isfinite(ser.y[i])) {
        flush();
        continue;
      }
      run.emplace_back(xs(ser.x[i]), ys(std::clamp(ser.y[i], y0, y1)));
    }
    flush();
    if (o.markers) {
      for (size_t i = 0; i < ser.x.size(); ++i) {
        if (!std::isfinite(ser.x[i]) || !std::isfinite(ser.y[i])) continue;
        const std::string tip = (ser.name.empty() ? "" : ser.name + ": ") + "(" +
                                format_value(ser.x[i]) + ", " + format_value(ser.y[i]) + ")";
        doc.circle(xs(ser.x[i]), ys(std::clamp(ser.y[i], y0, y1)), 3.2, color, "", "marker", 1.0,
                   tip);
      }
    }
  }
  if (!legend.empty()) draw_legend(doc, a.right() + 18, a.top, legend, "", LegendKind::Line);
  return doc.finish();
}

// ----- Bar chart -----------------------------------------------------------------------------

std::string bar_chart_svg(const BarChartData& data, const BarChartOptions& o) {
  const size_t ncat = data.categories.size(), nser = data.series.size();
  if (ncat == 0 || nser == 0) throw UsageError("bar_chart_svg: no categories or no series");
  Range vr;
  vr.add(0.0);
  for (const auto& s : data.series) {
    if (s.values.size() != ncat || (!s.errors.empty() && s.errors.size() != ncat)) {
      throw UsageError("bar_chart_svg: series '" + s.name + "' has " +
                       std::to_string(s.values.size()) + " values and " +
                       std::to_string(s.errors.size()) + " errors for " + std::to_string(ncat) +
                       " categories");
    }
    for (size_t c = 0; c < ncat; ++c) {
      const double e =
          s.errors.empty() || !std::isfinite(s.errors[c]) ? 0.0 : std::fabs(s.errors[c]);
      vr.add(s.values[c] + e);
      vr.add(s.values[c] - e);
    }
  }
  if (o.reference) vr.add(*o.reference);
  double y0 = o.y_min.value_or(vr.lo), y1 = o.y_max.value_or(vr.hi);
  if (!o.y_min || !o.y_max) {
    double lo = y0, hi = y1;
    nice_range(lo, hi, 6);
    if (!o.y_min) y0 = vr.lo >= 0.0 ? 0.0 : lo;
    if (!o.y_max) y1 = hi;
  }
  if (y1 <= y0) y1 = y0 + 1.0;
  const std::vector<double> yt = nice_ticks(y0, y1, 6);

  std::vector<LegendEntry> legend;
  if (nser >= 2) {
    for (size_t s = 0; s < nser; ++s)
      legend.push_back({data.series[s].name, category_color(s), false, ""});
  }
  const double legend_w = legend.empty() ? 0 : legend_width(legend, "") + 12;
  PlotArea a;
  a.left = 12 + y_axis_width(yt, !o.y_label.empty());
  a.top = o.title.empty() ? 16 : 42;
  a.width = std::max(80.0, o.width - a.left - legend_w - 20);
  const double slot = a.width / static_cast<double>(ncat);
  double widest = 0;
  for (const auto& c : data.categories) widest = std::max(widest, text_width(c, kTickSize));
  const bool rotate = widest > slot - 4;
  const double label_h = rotate ? std::min(widest, 140.0) * 0.71 + 14 : 20;
  const double bottom_h = label_h + (o.x_label.empty() ? 10 : 30);
  a.height = std::max(80.0, o.height - a.top - bottom_h);
  const Scale ys{y0, y1, a.bottom(), a.top};

  SvgDoc doc(o.width, a.bottom() + bottom_h);
  if (!o.title.empty()) doc.text(o.width / 2, 26, o.title, kTitleSize, "middle", 0, true);
  draw_axes(doc, a, Scale{}, ys, {}, yt, "", o.y_label);
  const double group = slot * 0.8, bar = group / static_cast<double>(nser);
  const double base = ys(std::clamp(0.0, y0, y1));
  for (size_t c = 0; c < ncat; ++c) {
    const double gx = a.left + c * slot + (slot - group) / 2;
    for (size_t s = 0; s < nser; ++s) {
      const auto& ser = data.series[s];
      const double v = ser.values[c];
      if (!std::isfinite(v)) continue;
      const double top = ys(std::clamp(v, y0, y1));
      const double e =
          ser.errors.empty() || !std::isfinite(ser.errors[c]) ? 0.0 : std::fabs(ser.errors[c]);
      std::string tip =
          (ser.name.empty() ? "" : ser.name + ", ") + data.categories[c] + ": " + format_value(v);
      if (e > 0) tip += " \u00b1 " + format_value(e);
      const double bx = gx + s * bar + bar * 0.06;
      doc.rect(bx, std::min(top, base), bar * 0.88, std::fabs(base - top), category_color(s), "bar",
               "", tip);
      const double cx = bx + bar * 0.44;
      if (e > 0) {
        const double ylo = ys(std::clamp(v - e, y0, y1)), yhi = ys(std::clamp(v + e, y0, y1));
        const double cap = std::min(bar * 0.25, 6.0);
        doc.raw("<path class=\"errorbar\" d=\"M" + num(cx) + "," + num(ylo) + "V" + num(yhi) + "M" +
                num(cx - cap) + "," + num(ylo) + "H" + num(cx + cap) + "M" + num(cx - cap) + "," +
                num(yhi) + "H" + num(cx + cap) +
                "\" stroke=\"#222222\" stroke-width=\"1.3\" fill=\"none\"/>\n");
      }
      if (o.value_labels) {
        char val[32];
        std::snprintf(val, sizeof val, "%.3g", v);
        doc.text(cx, ys(std::clamp(v + e, y0, y1)) - 4, val, kTickSize - 1, "middle", 0, false,
                 kAxisColor, "value");
      }
    }
    const double lx = a.left + (c + 0.5) * slot;
    if (rotate) {
      doc.text(lx + 4, a.bottom() + 12, truncate_text(data.categories[c], 24), kTickSize, "end",
               -45, false, kAxisColor, "category");
    } else {
      doc.text(lx, a.bottom() + 16, data.categories[c], kTickSize, "middle", 0, false, kAxisColor,
               "category");
    }
  }
  if (o.reference && *o.reference >= y0 && *o.reference <= y1) {
    const double y = ys(*o.reference);
    doc.line(a.left, y, a.right(), y, "#555555", 1.3, "5 4", "reference");
    if (!o.reference_label.empty())
      doc.text(a.right() - 4, y - 5, o.reference_label, kTickSize, "end", 0, false, kAxisColor,
               "reference-label", true);
  }
  if (!o.x_label.empty()) {
    doc.text(a.left + a.width / 2, a.bottom() + label_h + 20, o.x_label, kFontSize, "middle");
  }
  if (!legend.empty()) draw_legend(doc, a.right() + 18, a.top, legend, "", LegendKind::Square);
  return doc.finish();
}

}  // namespace xlt::report
