#pragma once
// SampleSource: a point-in-time view of metric samples, for exporters that push them (Prometheus
// remote write) instead of being scraped.
//
// A sample is one time series value: `metric` is the full series name ("istio_requests_total",
// "istio_request_bytes_bucket", "istio_request_bytes_sum", ...), `labels` its labels without
// __name__ (a histogram bucket includes its "le"). Views are valid only during the callback.
// Threading: VisitSamples may be called from any thread while the source keeps being updated;
// each series is read consistently, the set of series as of some moment during the call.

#include <functional>
#include <span>
#include <string_view>

namespace meshtel::collector {

struct SampleLabel {
  std::string_view name;
  std::string_view value;
};

struct MetricSample {
  std::string_view metric;
  std::span<const SampleLabel> labels;
  double value = 0;
};

class SampleSource {
 public:
  virtual ~SampleSource() = default;
  virtual void VisitSamples(const std::function<void(const MetricSample&)>& visit) const = 0;
};

}  // namespace meshtel::collector
