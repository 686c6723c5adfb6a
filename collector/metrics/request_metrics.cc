#include "collector/metrics/request_metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>

#include "absl/hash/hash.h"
#include "collector/metrics/istio_labels.h"
#include "fmt/format.h"

namespace meshtel::collector {
namespace {

// Series key: each label value prefixed by its length, so distinct tuples never collide.
void BuildSeriesKey(const std::array<std::string_view, kIstioRequestLabelCount>& values,
                    std::string& key) {
  key.clear();
  for (std::string_view value : values) {
    const uint32_t size = static_cast<uint32_t>(value.size());
    key.append(reinterpret_cast<const char*>(&size), sizeof(size));
    key.append(value);
  }
}

std::string RenderLabels(const std::array<std::string_view, kIstioRequestLabelCount>& values) {
  std::string text;
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) text.push_back(',');
    text.append(kIstioRequestLabelNames[i]);
    text.append("=\"");
    AppendEscapedLabelValue(values[i], text);
    text.push_back('"');
  }
  return text;
}

void AppendUint(uint64_t value, std::string& out) {
  char buffer[24];
  auto result = std::to_chars(buffer, buffer + sizeof(buffer), value);
  out.append(buffer, result.ptr);
}

// One histogram family: _bucket (cumulative, le ascending, +Inf last), _sum, _count.
void RenderHistogram(std::string_view name, std::string_view help,
                     const std::vector<std::string>& le_texts,
                     const std::vector<std::pair<const std::string*, const HistogramCounts*>>& rows,
                     std::string& out) {
  fmt::format_to(std::back_inserter(out), "# HELP {} {}\n# TYPE {} histogram\n", name, help, name);
  for (const auto& [labels, histogram] : rows) {
    uint64_t cumulative = 0;
    for (size_t i = 0; i < histogram->counts.size(); ++i) {
      cumulative += histogram->counts[i];
      out.append(name).append("_bucket{").append(*labels).append(",le=\"").append(le_texts[i]);
      out.append("\"} ");
      AppendUint(cumulative, out);
      out.push_back('\n');
    }
    out.append(name).append("_sum{").append(*labels).append("} ");
    AppendPrometheusDouble(histogram->sum, out);
    out.append("\n").append(name).append("_count{").append(*labels).append("} ");
    AppendUint(histogram->count, out);
    out.push_back('\n');
  }
}

}  // namespace

void HistogramCounts::Observe(double value) {
  const auto it =
      std::lower_bound(kIstioHistogramBounds.begin(), kIstioHistogramBounds.end(), value);
  ++counts[static_cast<size_t>(it - kIstioHistogramBounds.begin())];
  sum += value;
  ++count;
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

void AppendPrometheusDouble(double value, std::string& out) {
  if (std::isnan(value)) {
    out.append("NaN");
  } else if (std::isinf(value)) {
    out.append(value > 0 ? "+Inf" : "-Inf");
  } else if (value == std::trunc(value) && std::fabs(value) < 1e15) {
    // Whole numbers in full, as Envoy prints bucket bounds: "3600000", never "3.6e+06".
    AppendUint(static_cast<uint64_t>(std::fabs(value)), value < 0 ? out.append("-") : out);
  } else {
    char buffer[32];
    auto result = std::to_chars(buffer, buffer + sizeof(buffer), value);
    out.append(buffer, result.ptr);
  }
}

RequestMetrics::RequestMetrics(size_t shard_count) {
  shards_.reserve(std::max<size_t>(shard_count, 1));
  for (size_t i = 0; i < std::max<size_t>(shard_count, 1); ++i) {
    shards_.push_back(std::make_unique<Shard>());
  }
}

void RequestMetrics::Record(const meshtel::v1::RequestRecord& record) {
  thread_local IstioLabelScratch scratch;
  thread_local std::string key;
  const auto values = IstioRequestLabelValues(record, scratch);
  BuildSeriesKey(values, key);
  Shard& shard = *shards_[absl::HashOf(key) % shards_.size()];

  std::lock_guard<std::mutex> lock(shard.mutex);
  auto it = shard.series.find(key);
  if (it == shard.series.end()) {
    auto series = std::make_unique<Series>();
    series->key = key;
    series->labels_text = RenderLabels(values);
    it = shard.series.emplace(key, std::move(series)).first;
  }
  Series& series = *it->second;
  ++series.requests;
  series.duration_ms.Observe(static_cast<double>(record.duration_ns()) / 1e6);
  series.request_bytes.Observe(static_cast<double>(record.request_bytes()));
  series.response_bytes.Observe(static_cast<double>(record.response_bytes()));
}

std::vector<RequestMetrics::Series> RequestMetrics::Snapshot() const {
  std::vector<Series> snapshot;
  for (const auto& shard : shards_) {
    std::lock_guard<std::mutex> lock(shard->mutex);
    snapshot.reserve(snapshot.size() + shard->series.size());
    for (const auto& [key, series] : shard->series) snapshot.push_back(*series);
  }
  std::sort(snapshot.begin(), snapshot.end(),
            [](const Series& a, const Series& b) { return a.labels_text < b.labels_text; });
  return snapshot;
}

size_t RequestMetrics::series_count() const {
  size_t count = 0;
  for (const auto& shard : shards_) {
    std::lock_guard<std::mutex> lock(shard->mutex);
    count += shard->series.size();
  }
  return count;
}

void RequestMetrics::RenderText(std::string& out) const {
  static const std::vector<std::string> kLeTexts = [] {
    std::vector<std::string> texts;
    for (double bound : kIstioHistogramBounds) {
      std::string text;
      AppendPrometheusDouble(bound, text);
      texts.push_back(text);
    }
    texts.push_back("+Inf");
    return texts;
  }();

  const std::vector<Series> snapshot = Snapshot();
  if (snapshot.empty()) return;

  constexpr std::string_view kRequests = "istio_requests_total";
  fmt::format_to(std::back_inserter(out),
                 "# HELP {0} Requests handled, by Istio's standard labels.\n# TYPE {0} counter\n",
                 kRequests);
  for (const Series& series : snapshot) {
    out.append(kRequests).append("{").append(series.labels_text).append("} ");
    AppendUint(series.requests, out);
    out.push_back('\n');
  }

  std::vector<std::pair<const std::string*, const HistogramCounts*>> rows(snapshot.size());
  const auto render = [&](std::string_view name, std::string_view help,
                          HistogramCounts Series::*member) {
    for (size_t i = 0; i < snapshot.size(); ++i) {
      rows[i] = {&snapshot[i].labels_text, &(snapshot[i].*member)};
    }
    RenderHistogram(name, help, kLeTexts, rows, out);
  };
  render("istio_request_duration_milliseconds",
         "Request duration from the first downstream byte to the end of the response, in ms.",
         &Series::duration_ms);
  render("istio_request_bytes", "Request size as received from the downstream, in bytes.",
         &Series::request_bytes);
  render("istio_response_bytes", "Response size as sent to the downstream, in bytes.",
         &Series::response_bytes);
}

}  // namespace meshtel::collector

namespace meshtel::collector {

void RequestMetrics::VisitSamples(const std::function<void(const MetricSample&)>& visit) const {
  static const std::vector<std::string> kLeTexts = [] {
    std::vector<std::string> texts;
    for (double bound : kIstioHistogramBounds) {
      std::string text;
      AppendPrometheusDouble(bound, text);
      texts.push_back(text);
    }
    texts.push_back("+Inf");
    return texts;
  }();
  const std::vector<Series> snapshot = Snapshot();
  std::vector<SampleLabel> labels(kIstioRequestLabelCount + 1);
  for (const Series& series : snapshot) {
    // Decode the length-prefixed label values of the key.
    size_t at = 0;
    for (size_t i = 0; i < kIstioRequestLabelCount; ++i) {
      uint32_t size = 0;
      std::memcpy(&size, series.key.data() + at, sizeof(size));
      at += sizeof(size);
      labels[i] = {kIstioRequestLabelNames[i], std::string_view(series.key).substr(at, size)};
      at += size;
    }
    const std::span<const SampleLabel> base(labels.data(), kIstioRequestLabelCount);
    visit({"istio_requests_total", base, static_cast<double>(series.requests)});
    const auto histogram = [&](std::string_view prefix, const HistogramCounts& counts) {
      const std::string bucket = std::string(prefix) + "_bucket";
      uint64_t cumulative = 0;
      for (size_t i = 0; i < counts.counts.size(); ++i) {
        cumulative += counts.counts[i];
        labels[kIstioRequestLabelCount] = {"le", kLeTexts[i]};
        visit({bucket, std::span<const SampleLabel>(labels.data(), kIstioRequestLabelCount + 1),
               static_cast<double>(cumulative)});
      }
      visit({std::string(prefix) + "_sum", base, counts.sum});
      visit({std::string(prefix) + "_count", base, static_cast<double>(counts.count)});
    };
    histogram("istio_request_duration_milliseconds", series.duration_ms);
    histogram("istio_request_bytes", series.request_bytes);
    histogram("istio_response_bytes", series.response_bytes);
  }
}

}  // namespace meshtel::collector
