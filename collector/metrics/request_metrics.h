#pragma once
// RequestMetrics: aggregates RequestRecords into Istio's HTTP/gRPC request metrics and renders
// them in the Prometheus text format 0.0.4.
//
// Families: istio_requests_total (counter), istio_request_duration_milliseconds,
// istio_request_bytes and istio_response_bytes (histograms with Envoy's default bounds), all
// with Istio's 25 standard labels (istio_labels.h).
//
// Threading: Record() and RenderText() may be called from any number of threads at once.
// Series are sharded by label hash; Record() locks one shard for the update only, and
// RenderText() copies one shard at a time, so a scrape never stalls ingest for long.
// Memory: one Series per distinct label set; series are never removed yet (cardinality limits
// and expiry arrive with the metrics work).

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "collector/metrics/sample_source.h"
#include "meshtel/v1/record.pb.h"

namespace meshtel::collector {

// Envoy's default histogram bounds, used by Istio for durations (ms) and sizes (bytes) alike.
inline constexpr std::array<double, 19> kIstioHistogramBounds = {
    0.5,  1,    5,     10,    25,    50,     100,    250,     500,    1000,
    2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000};

struct HistogramCounts {
  // counts[i] = observations in (bound[i-1], bound[i]]; the last entry is (bound[18], +Inf).
  std::array<uint64_t, kIstioHistogramBounds.size() + 1> counts{};
  double sum = 0;
  uint64_t count = 0;

  void Observe(double value);
};

class RequestMetrics : public SampleSource {
 public:
  explicit RequestMetrics(size_t shard_count = 16);

  // Adds one request to its series (creating the series on first sight).
  void Record(const meshtel::v1::RequestRecord& record);

  // Appends HELP/TYPE lines and every series of every family to `out`.
  void RenderText(std::string& out) const;

  size_t series_count() const;

  // SampleSource: every sample RenderText() would print, with the same names and labels.
  void VisitSamples(const std::function<void(const MetricSample&)>& visit) const override;

 private:
  struct Series {
    std::string key;          // the label values, each prefixed by its length
    std::string labels_text;  // rendered once: reporter="source",source_workload="...",...
    uint64_t requests = 0;
    HistogramCounts duration_ms;
    HistogramCounts request_bytes;
    HistogramCounts response_bytes;
  };
  struct Shard {
    mutable std::mutex mutex;
    absl::flat_hash_map<std::string, std::unique_ptr<Series>> series ABSL_GUARDED_BY(mutex);
  };

  std::vector<Series> Snapshot() const;

  std::vector<std::unique_ptr<Shard>> shards_;
};

// Escapes a label value for the text format: backslash, double quote and newline.
void AppendEscapedLabelValue(std::string_view value, std::string& out);
// Go-style shortest float text: "0.5", "1", "3600000", "+Inf", "NaN".
void AppendPrometheusDouble(double value, std::string& out);

}  // namespace meshtel::collector
