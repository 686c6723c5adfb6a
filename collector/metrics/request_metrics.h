#pragma once
// RequestMetrics: aggregates RequestRecords into Istio's standard HTTP/gRPC metrics and renders
// them in the Prometheus text format 0.0.4 or OpenMetrics 1.0.
//
// Families (names, labels and buckets of wire-facts §8.1–8.3):
// - istio_requests_total (counter), istio_request_duration_milliseconds, istio_request_bytes and
//   istio_response_bytes (histograms with Envoy's default bounds): every record, with Istio's 25
//   request labels (istio_labels.h). These four share their label sets ("request series").
// - istio_request_messages_total, istio_response_messages_total (counters): records with
//   request_protocol gRPC, adding RequestRecord.request_messages / response_messages, with the
//   20 message labels (reporter plus source_*/destination_*) ("message series").
// - istio_tcp_sent_bytes_total, istio_tcp_received_bytes_total,
//   istio_tcp_connections_opened_total, istio_tcp_connections_closed_total (counters): records
//   with request_protocol TCP (final TCP entries from Envoy ALS: one closed connection each,
//   response_bytes sent and request_bytes received over its life), with the 23 TCP labels (the
//   request labels without response_code and grpc_response_status) ("TCP series"). TCP records
//   update none of the request or message metrics.
// - istio_build (gauge, value 1): labels component="proxy" and tag=<options.build_tag>.
//
// Labels: a MetricLabelPlans (metric_overrides.h) says, per metric and record mode (reporter
// source / destination / unspecified), which labels a series carries and where their values come
// from (tag overrides, the keep list) and whether the metric is recorded at all. Record() takes
// the plans per record (a workload's telemetry policy: collector/policy/policy_enforcer.h), or
// options.label_plans when none is given. Each family has one series table keyed by label set
// (the plan's label names and the values); a series holds the whole family's numbers and the
// set of metrics that counted into it, and each metric prints the series it counted into, so
// records whose plans differ (a workload with a tag override, one with a metric disabled) share
// the family's one # TYPE line and series of equal label sets are one series. Metrics of a
// family whose plans are equal for a record are updated with one lookup (without overrides: one
// for the four request metrics, one for the two message counters). Series of different label
// names never share a key; after a REMOVE, records that differ only in the removed label update
// one series.
//
// Cardinality: each metric counts at most options.max_series_per_metric label sets. A record
// whose label set is new to a metric that is full updates, for that metric, its table's
// overflow series instead — every label set to kOverflowLabelValue; one per set of label names,
// so one unless overrides give records different label names — and counts the update in
// meshtel_metrics_series_overflow_total{metric=...}. Overflow
// series are not counted against the limit, so at most limit + 1 label sets are exposed per set
// of label names. ExpireIdle() removes series not updated for a while (overflow series included); a
// later record creates them again, from zero. meshtel_metrics_series{metric=...} is the number
// of label sets counted against the limit. Both meshtel_* families are registered in
// options.registry when one is given.
//
// Label values are repaired to valid UTF-8 (U+FFFD for ill-formed bytes) before they key a
// series, so two ill-formed values that repair alike share one series.
//
// Threading: Record(), ExpireIdle(), Render*() and VisitSamples() may be called from any number
// of threads at once. Series are sharded by label hash; Record() locks one shard for the update
// only. Rendering copies one shard at a time (the labels are shared, immutable text; only the
// numbers are copied) and formats outside every lock, so a scrape never stalls ingest for long.
// Hot path: updating an existing series allocates nothing (thread-local key buffers).
// Ownership: options.registry must outlive the RequestMetrics.

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "collector/metrics/exposition.h"
#include "collector/metrics/metric_overrides.h"
#include "collector/metrics/sample_source.h"
#include "meshtel/v1/record.pb.h"
#include "prometheus/registry.h"

namespace meshtel::collector {

// Envoy's default histogram bounds, used by Istio for durations (ms) and sizes (bytes) alike.
inline constexpr std::array<double, 19> kIstioHistogramBounds = {
    0.5,  1,    5,     10,    25,    50,     100,    250,     500,    1000,
    2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000};

// The value of every label of a table's overflow series.
inline constexpr std::string_view kOverflowLabelValue = "__overflow__";

struct HistogramCounts {
  // counts[i] = observations in (bound[i-1], bound[i]]; the last entry is (bound[18], +Inf).
  std::array<uint64_t, kIstioHistogramBounds.size() + 1> counts{};
  double sum = 0;
  uint64_t count = 0;

  void Observe(double value);
};

struct RequestMetricsOptions {
  // Shards per series table (lock striping). At least 1.
  size_t shard_count = 16;
  // Label sets per metric before new ones go to the overflow series. At least 1.
  uint64_t max_series_per_metric = 10000;
  // istio_build's tag label; empty leaves istio_build out.
  std::string build_tag = MESHTEL_VERSION;
  // Where meshtel_metrics_series and meshtel_metrics_series_overflow_total are registered; may
  // be null (benchmarks, tests that do not look at them).
  prometheus::Registry* registry = nullptr;
  // Tag overrides, disabled metrics and the keep list, compiled (metric_overrides.h). Null:
  // Istio's standard labels on every metric.
  std::shared_ptr<const MetricLabelPlans> label_plans;
};

// The Prometheus name of `metric` ("istio_requests_total", ...).
std::string_view MetricName(IstioMetric metric);

class RequestMetrics : public SampleSource {
 public:
  explicit RequestMetrics(RequestMetricsOptions options = {});
  ~RequestMetrics() override;

  RequestMetrics(const RequestMetrics&) = delete;
  RequestMetrics& operator=(const RequestMetrics&) = delete;

  // A coarse monotonic clock in milliseconds (a few ms resolution, no syscall): the time base
  // of Record() and ExpireIdle().
  static int64_t NowMs();

  // Adds one request to its series (creating the series on first sight) at time NowMs().
  void Record(const meshtel::v1::RequestRecord& record) { Record(record, NowMs()); }
  // The same at an explicit time on the NowMs() scale (tests drive expiry with it).
  void Record(const meshtel::v1::RequestRecord& record, int64_t now_ms);
  // With the record's own label plans (its workload's policy); `plans` is read only during the
  // call.
  void Record(const meshtel::v1::RequestRecord& record, const MetricLabelPlans& plans) {
    Record(record, plans, NowMs());
  }
  void Record(const meshtel::v1::RequestRecord& record, const MetricLabelPlans& plans,
              int64_t now_ms);

  // Removes every series last updated more than `idle_ms` before `now_ms`; returns how many.
  size_t ExpireIdle(int64_t now_ms, int64_t idle_ms);

  // Appends the metadata and every series of every family in `format` (no "# EOF").
  void Render(ExpositionFormat format, std::string& out) const;
  void RenderText(std::string& out) const { Render(ExpositionFormat::kPrometheusText, out); }

  // Label sets counted against the limit: of istio_requests_total, and of
  // istio_request_messages_total.
  size_t series_count() const;
  size_t message_series_count() const;

  // The plans in use (the defaults when options.label_plans was null).
  const MetricLabelPlans& label_plans() const;

  // SampleSource: every sample Render(kPrometheusText) would print, same names and labels.
  void VisitSamples(const std::function<void(const MetricSample&)>& visit) const override;

 private:
  struct Tables;
  RequestMetricsOptions options_;
  std::unique_ptr<Tables> tables_;
};

}  // namespace meshtel::collector
