#include "collector/metrics/exposition.h"

#include <sys/mman.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace meshtel::collector {
namespace {

std::string_view Trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return absl::ascii_tolower(static_cast<unsigned char>(x)) ==
                  absl::ascii_tolower(static_cast<unsigned char>(y));
         });
}

// One element of a comma-separated header list: "token;key=value;q=0.5".
struct ListElement {
  std::string_view token;
  std::string_view version;  // the `version` parameter, unquoted; empty when absent
  double q = 1;
};

std::vector<ListElement> ParseList(std::string_view header) {
  std::vector<ListElement> elements;
  while (!header.empty()) {
    const size_t comma = header.find(',');
    std::string_view element = header.substr(0, comma);
    header = comma == std::string_view::npos ? std::string_view() : header.substr(comma + 1);
    ListElement parsed;
    size_t semicolon = element.find(';');
    parsed.token = Trim(element.substr(0, semicolon));
    if (parsed.token.empty()) continue;
    while (semicolon != std::string_view::npos) {
      element = element.substr(semicolon + 1);
      semicolon = element.find(';');
      const std::string_view parameter = Trim(element.substr(0, semicolon));
      const size_t equals = parameter.find('=');
      if (equals == std::string_view::npos) continue;
      const std::string_view key = Trim(parameter.substr(0, equals));
      std::string_view value = Trim(parameter.substr(equals + 1));
      if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
        value = value.substr(1, value.size() - 2);
      }
      if (EqualsIgnoreCase(key, "q")) {
        double q = 0;
        const auto result = std::from_chars(value.data(), value.data() + value.size(), q);
        // An unreadable q makes the element unacceptable rather than preferred.
        parsed.q = (result.ec == std::errc() && result.ptr == value.data() + value.size())
                       ? std::clamp(q, 0.0, 1.0)
                       : 0;
      } else if (EqualsIgnoreCase(key, "version")) {
        parsed.version = value;
      }
    }
    elements.push_back(parsed);
  }
  return elements;
}

void AppendHelpText(ExpositionFormat format, std::string_view help, std::string& out) {
  std::string repaired;
  if (!IsValidUtf8(help)) {
    AppendUtf8Repaired(help, repaired);
    help = repaired;
  }
  for (char c : help) {
    if (c == '\\') {
      out.append("\\\\");
    } else if (c == '\n') {
      out.append("\\n");
    } else if (c == '"' && format == ExpositionFormat::kOpenMetrics) {
      out.append("\\\"");
    } else {
      out.push_back(c);
    }
  }
}

MetricKind KindOf(prometheus::MetricType type) {
  switch (type) {
    case prometheus::MetricType::Counter:
      return MetricKind::kCounter;
    case prometheus::MetricType::Gauge:
      return MetricKind::kGauge;
    case prometheus::MetricType::Histogram:
      return MetricKind::kHistogram;
    case prometheus::MetricType::Summary:
      return MetricKind::kSummary;
    default:
      return MetricKind::kUntyped;
  }
}

std::string_view TypeName(ExpositionFormat format, MetricKind kind) {
  switch (kind) {
    case MetricKind::kCounter:
      return "counter";
    case MetricKind::kGauge:
      return "gauge";
    case MetricKind::kHistogram:
      return "histogram";
    case MetricKind::kSummary:
      return "summary";
    default:
      return format == ExpositionFormat::kOpenMetrics ? "unknown" : "untyped";
  }
}

// Appends `{name="value",...` for a prometheus-cpp metric, without the closing brace, so a
// caller can add `le`/`quantile`. Writes nothing when there are no labels and no extra label.
void AppendLabels(const std::vector<prometheus::ClientMetric::Label>& labels, std::string& out) {
  std::string repaired;
  for (size_t i = 0; i < labels.size(); ++i) {
    out.append(i == 0 ? "{" : ",").append(labels[i].name).append("=\"");
    std::string_view value = labels[i].value;
    if (!IsValidUtf8(value)) {
      repaired.clear();
      AppendUtf8Repaired(value, repaired);
      value = repaired;
    }
    AppendEscapedLabelValue(value, out);
    out.push_back('"');
  }
}

// One sample line: name{labels[,extra_name="extra_value"]} value [timestamp]
void AppendSample(ExpositionFormat format, std::string_view name,
                  const prometheus::ClientMetric& metric, std::string_view extra_name,
                  std::string_view extra_value, double value, std::string& out) {
  out.append(name);
  AppendLabels(metric.label, out);
  if (!extra_name.empty()) {
    out.append(metric.label.empty() ? "{" : ",").append(extra_name).append("=\"");
    out.append(extra_value).push_back('"');
  }
  if (!metric.label.empty() || !extra_name.empty()) out.push_back('}');
  out.push_back(' ');
  AppendPrometheusDouble(value, out);
  if (metric.timestamp_ms != 0) {
    out.push_back(' ');
    if (format == ExpositionFormat::kOpenMetrics) {
      // OpenMetrics timestamps are seconds.
      AppendPrometheusDouble(static_cast<double>(metric.timestamp_ms) / 1000.0, out);
    } else {
      out.append(std::to_string(metric.timestamp_ms));
    }
  }
  out.push_back('\n');
}

}  // namespace

ScrapeNegotiation NegotiateScrape(std::string_view accept, std::string_view accept_encoding) {
  ScrapeNegotiation negotiation;
  double best_q = 0;
  for (const ListElement& element : ParseList(accept)) {
    if (element.q <= best_q) continue;
    if (EqualsIgnoreCase(element.token, "application/openmetrics-text") &&
        (element.version.empty() || element.version == "1.0.0")) {
      negotiation.format = ExpositionFormat::kOpenMetrics;
      best_q = element.q;
    } else if ((EqualsIgnoreCase(element.token, "text/plain") &&
                (element.version.empty() || element.version == "0.0.4")) ||
               element.token == "*/*" || EqualsIgnoreCase(element.token, "text/*")) {
      negotiation.format = ExpositionFormat::kPrometheusText;
      best_q = element.q;
    }
  }
  for (const ListElement& element : ParseList(accept_encoding)) {
    if (EqualsIgnoreCase(element.token, "gzip") || element.token == "*") {
      if (element.q > 0) {
        negotiation.gzip = true;
      } else if (EqualsIgnoreCase(element.token, "gzip")) {
        negotiation.gzip = false;  // an explicit gzip;q=0 wins over "*"
        break;
      }
    }
  }
  return negotiation;
}

std::string_view ContentTypeOf(ExpositionFormat format) {
  return format == ExpositionFormat::kOpenMetrics
             ? "application/openmetrics-text; version=1.0.0; charset=utf-8"
             : "text/plain; version=0.0.4; charset=utf-8";
}

void AppendMetadata(ExpositionFormat format, std::string_view name, MetricKind kind,
                    std::string_view help, std::string_view unit, std::string& out) {
  std::string_view family = name;
  if (format == ExpositionFormat::kOpenMetrics && kind == MetricKind::kCounter &&
      family.ends_with("_total")) {
    family.remove_suffix(std::string_view("_total").size());
  }
  if (!help.empty()) {
    out.append("# HELP ").append(family).push_back(' ');
    AppendHelpText(format, help, out);
    out.push_back('\n');
  }
  out.append("# TYPE ").append(family).push_back(' ');
  out.append(TypeName(format, kind)).push_back('\n');
  if (format == ExpositionFormat::kOpenMetrics && !unit.empty()) {
    out.append("# UNIT ").append(family).push_back(' ');
    out.append(unit).push_back('\n');
  }
}

bool IsValidUtf8(std::string_view text) {
  // Fast path: ASCII, eight bytes at a time.
  size_t i = 0;
  for (; i + 8 <= text.size(); i += 8) {
    uint64_t word;
    std::copy_n(text.data() + i, 8, reinterpret_cast<char*>(&word));
    if ((word & 0x8080808080808080ull) != 0) break;
  }
  while (i < text.size()) {
    const auto byte = static_cast<unsigned char>(text[i]);
    if (byte < 0x80) {
      ++i;
      continue;
    }
    size_t length;
    unsigned char low = 0x80, high = 0xBF;  // allowed range of the second byte
    if (byte >= 0xC2 && byte <= 0xDF) {
      length = 2;
    } else if (byte >= 0xE0 && byte <= 0xEF) {
      length = 3;
      if (byte == 0xE0) low = 0xA0;
      if (byte == 0xED) high = 0x9F;
    } else if (byte >= 0xF0 && byte <= 0xF4) {
      length = 4;
      if (byte == 0xF0) low = 0x90;
      if (byte == 0xF4) high = 0x8F;
    } else {
      return false;
    }
    if (i + length > text.size()) return false;
    const auto second = static_cast<unsigned char>(text[i + 1]);
    if (second < low || second > high) return false;
    for (size_t k = 2; k < length; ++k) {
      const auto next = static_cast<unsigned char>(text[i + k]);
      if (next < 0x80 || next > 0xBF) return false;
    }
    i += length;
  }
  return true;
}

void AppendUtf8Repaired(std::string_view text, std::string& out) {
  constexpr std::string_view kReplacement = "\xEF\xBF\xBD";
  size_t i = 0;
  while (i < text.size()) {
    const auto byte = static_cast<unsigned char>(text[i]);
    if (byte < 0x80) {
      out.push_back(static_cast<char>(byte));
      ++i;
      continue;
    }
    size_t length;
    unsigned char low = 0x80, high = 0xBF;
    if (byte >= 0xC2 && byte <= 0xDF) {
      length = 2;
    } else if (byte >= 0xE0 && byte <= 0xEF) {
      length = 3;
      if (byte == 0xE0) low = 0xA0;
      if (byte == 0xED) high = 0x9F;
    } else if (byte >= 0xF0 && byte <= 0xF4) {
      length = 4;
      if (byte == 0xF0) low = 0x90;
      if (byte == 0xF4) high = 0x8F;
    } else {
      // Not a lead byte: a maximal ill-formed subpart of its own.
      out.append(kReplacement);
      ++i;
      continue;
    }
    // Take continuation bytes while they fit; stop at the first that cannot continue.
    size_t taken = 1;
    while (taken < length && i + taken < text.size()) {
      const auto next = static_cast<unsigned char>(text[i + taken]);
      const unsigned char next_low = taken == 1 ? low : 0x80;
      const unsigned char next_high = taken == 1 ? high : 0xBF;
      if (next < next_low || next > next_high) break;
      ++taken;
    }
    if (taken == length) {
      out.append(text.substr(i, length));
    } else {
      out.append(kReplacement);  // the lead byte and the continuations that fit
    }
    i += taken;
  }
}

void AppendEscapedLabelValue(std::string_view value, std::string& out) {
  for (char c : value) {
    switch (c) {
      case '\\':
        out.append("\\\\");
        break;
      case '"':
        out.append("\\\"");
        break;
      case '\n':
        out.append("\\n");
        break;
      default:
        out.push_back(c);
    }
  }
}

char* WritePrometheusDouble(double value, char* at) {
  char* const end = at + kMaxDoubleText;
  if (std::isnan(value)) return std::copy_n("NaN", 3, at);
  if (std::isinf(value)) return std::copy_n(value > 0 ? "+Inf" : "-Inf", 4, at);
  if (value == std::trunc(value) && std::fabs(value) < 1e15) {
    // Whole numbers in full, as Envoy prints bucket bounds: "3600000", never "3.6e+06".
    if (value < 0) *at++ = '-';
    return std::to_chars(at, end, static_cast<uint64_t>(std::fabs(value))).ptr;
  }
  return std::to_chars(at, end, value).ptr;
}

void AppendPrometheusDouble(double value, std::string& out) {
  char buffer[kMaxDoubleText];
  out.append(buffer, WritePrometheusDouble(value, buffer));
}

void ReserveBody(std::string& out, size_t bytes) {
  const size_t wanted = out.size() + bytes;
  if (wanted <= out.capacity()) return;
  out.reserve(wanted);
  if (out.capacity() < (size_t{4} << 20)) return;
  constexpr uintptr_t kHugePage = uintptr_t{2} << 20;
  const auto begin = reinterpret_cast<uintptr_t>(out.data());
  const uintptr_t first = (begin + kHugePage - 1) & ~(kHugePage - 1);
  const uintptr_t last = (begin + out.capacity()) & ~(kHugePage - 1);
  if (last > first) madvise(reinterpret_cast<void*>(first), last - first, MADV_HUGEPAGE);
}

void AppendLeValue(ExpositionFormat format, double bound, std::string& out) {
  AppendPrometheusDouble(bound, out);
  if (format == ExpositionFormat::kOpenMetrics && std::isfinite(bound) &&
      bound == std::trunc(bound) && std::fabs(bound) < 1e15) {
    out.append(".0");
  }
}

void AppendPrometheusCppFamilies(ExpositionFormat format,
                                 const std::vector<prometheus::MetricFamily>& families,
                                 std::string& out) {
  for (const prometheus::MetricFamily& family : families) {
    if (family.metric.empty()) continue;
    const MetricKind kind = KindOf(family.type);
    AppendMetadata(format, family.name, kind, family.help, "", out);
    std::string counter_name = family.name;
    if (kind == MetricKind::kCounter && format == ExpositionFormat::kOpenMetrics &&
        !family.name.ends_with("_total")) {
      counter_name += "_total";  // OpenMetrics counter samples always carry _total
    }
    for (const prometheus::ClientMetric& metric : family.metric) {
      switch (kind) {
        case MetricKind::kCounter:
          AppendSample(format, counter_name, metric, "", "", metric.counter.value, out);
          break;
        case MetricKind::kGauge:
          AppendSample(format, family.name, metric, "", "", metric.gauge.value, out);
          break;
        case MetricKind::kUntyped:
          AppendSample(format, family.name, metric, "", "", metric.untyped.value, out);
          break;
        case MetricKind::kHistogram: {
          const std::string bucket = family.name + "_bucket";
          std::string le;
          for (const auto& b : metric.histogram.bucket) {
            le.clear();
            AppendLeValue(format, b.upper_bound, le);
            AppendSample(format, bucket, metric, "le", le, static_cast<double>(b.cumulative_count),
                         out);
          }
          AppendSample(format, family.name + "_sum", metric, "", "", metric.histogram.sample_sum,
                       out);
          AppendSample(format, family.name + "_count", metric, "", "",
                       static_cast<double>(metric.histogram.sample_count), out);
          break;
        }
        case MetricKind::kSummary: {
          std::string quantile;
          for (const auto& q : metric.summary.quantile) {
            quantile.clear();
            AppendPrometheusDouble(q.quantile, quantile);
            AppendSample(format, family.name, metric, "quantile", quantile, q.value, out);
          }
          AppendSample(format, family.name + "_sum", metric, "", "", metric.summary.sample_sum,
                       out);
          AppendSample(format, family.name + "_count", metric, "", "",
                       static_cast<double>(metric.summary.sample_count), out);
          break;
        }
      }
    }
  }
}

}  // namespace meshtel::collector
