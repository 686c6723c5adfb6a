#pragma once
// Metric overrides: Istio's Telemetry API `metrics.overrides` (wire-facts §8.4) applied mesh-wide
// by the collector, plus one mesh-level list of the labels to keep.
//
//   metrics:
//     keep_labels: [reporter, source_workload, destination_workload, response_code, user_tier]
//     overrides:
//       - match: {metric: REQUEST_COUNT, mode: SERVER}
//         tagOverrides:
//           user_tier: {value: "request.headers['x-user-tier']"}
//           response_flags: {operation: REMOVE}
//       - match: {metric: GRPC_REQUEST_MESSAGES}
//         disabled: true
//
// ReadMetricOverrides() reads that YAML; CompileMetricLabelPlans() validates it and turns it into
// one LabelPlan per (metric, record mode): the label names a series of that metric carries, in
// order, and where each value comes from. Plans are built once at load, so the aggregator's hot
// path only evaluates them (no parsing, no allocation for an existing series).
//
// Semantics (as Istio's, applied in list order, general overrides first):
// - match.metric: one metric or ALL_METRICS (the default); match.mode: CLIENT (records with
//   reporter=source), SERVER (reporter=destination) or CLIENT_AND_SERVER (the default; also
//   records whose reporter is unspecified).
// - disabled: true stops recording the metric for matching records; a later matching override
//   with disabled: false turns it back on; absent leaves it as it is.
// - tagOverrides.<label>: UPSERT (the default) replaces the value of a label the metric carries
//   (keeping its position) or appends a new label; REMOVE drops the label, so series that differed
//   only by it merge.
// - value: a record field (kRecordFields below, e.g. `request.method`, `source.workload`), a
//   captured request header `request.headers['x-user-tier']` (the proxies must capture it: see
//   captured_headers()), or a literal in single or double quotes. A missing header, or a field or
//   header that is empty, gives `unknown`, as Istio's standard labels do.
// - keep_labels (when set) is applied last: only the labels it names remain, on every istio_*
//   metric but istio_build. Every name must be a standard label or one an override UPSERTs, and
//   an UPSERTed label must be in it (it would otherwise be dropped without a trace).
//
// Errors name the YAML path: "metrics.overrides[1].tagOverrides.x: unknown operation 'ADD'".
// Threading: the compiled MetricLabelPlans is immutable and safe to share between threads.

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "collector/common/yaml_map.h"
#include "collector/metrics/istio_labels.h"
#include "collector/metrics/record_fields.h"
#include "meshtel/v1/record.pb.h"

namespace meshtel::collector {

// The Istio metrics meshtel aggregates (Telemetry API names in comments).
enum class IstioMetric : uint8_t {
  kRequestCount,          // REQUEST_COUNT: istio_requests_total
  kRequestDuration,       // REQUEST_DURATION: istio_request_duration_milliseconds
  kRequestSize,           // REQUEST_SIZE: istio_request_bytes
  kResponseSize,          // RESPONSE_SIZE: istio_response_bytes
  kGrpcRequestMessages,   // GRPC_REQUEST_MESSAGES: istio_request_messages_total
  kGrpcResponseMessages,  // GRPC_RESPONSE_MESSAGES: istio_response_messages_total
  kTcpSentBytes,          // TCP_SENT_BYTES: istio_tcp_sent_bytes_total
  kTcpReceivedBytes,      // TCP_RECEIVED_BYTES: istio_tcp_received_bytes_total
  kTcpOpenedConnections,  // TCP_OPENED_CONNECTIONS: istio_tcp_connections_opened_total
  kTcpClosedConnections,  // TCP_CLOSED_CONNECTIONS: istio_tcp_connections_closed_total
};
inline constexpr size_t kIstioMetricCount = 10;

// Which records a plan is for: reporter=source (CLIENT), reporter=destination (SERVER), or an
// unspecified reporter (only CLIENT_AND_SERVER overrides apply).
enum class RecordMode : uint8_t { kClient, kServer, kUnspecified };
inline constexpr size_t kRecordModeCount = 3;
RecordMode RecordModeOf(const meshtel::v1::RequestRecord& record);

enum class WorkloadMode : uint8_t { kClient, kServer, kClientAndServer };

struct TagOverrideConfig {
  std::string label;
  bool remove = false;  // operation: REMOVE (else UPSERT)
  std::string value;    // the expression as written; empty for REMOVE
  std::string path;     // "metrics.overrides[0].tagOverrides.<label>", for errors
};

struct MetricOverrideConfig {
  std::optional<IstioMetric> metric;  // nullopt: ALL_METRICS
  WorkloadMode mode = WorkloadMode::kClientAndServer;
  std::optional<bool> disabled;
  std::vector<TagOverrideConfig> tag_overrides;  // in document order
  std::string path;                              // "metrics.overrides[0]"
};

// Reads `overrides` and `keep_labels` under `metrics`; syntax errors (unknown keys, enum values,
// operations, a value with REMOVE or none with UPSERT) are recorded in `metrics` with their path.
// The expressions and names are checked by CompileMetricLabelPlans().
void ReadMetricOverrides(common::YamlMap& metrics, std::vector<MetricOverrideConfig>& overrides,
                         std::optional<std::vector<std::string>>& keep_labels);

// Where one label's value comes from.
struct LabelSource {
  enum class Kind : uint8_t { kStandard, kField, kHeader, kLiteral };
  Kind kind = Kind::kStandard;
  size_t standard_index = 0;  // kStandard: index into IstioRequestLabelValues()
  RecordField field = RecordField::kRequestMethod;  // kField
  std::string text;  // kHeader: the lower-case header name; kLiteral: the value

  bool operator==(const LabelSource&) const = default;
};

// The labels of one metric for one record mode.
struct LabelPlan {
  bool disabled = false;
  std::vector<std::string> names;
  std::vector<LabelSource> sources;  // parallel to names
  // True when the values are the first names.size() standard values in order (no evaluation).
  bool standard_prefix = false;
  // Equal for plans with equal name lists, across every MetricLabelPlans of the process (keys
  // series apart when plans differ); LabelNameSet(name_set_id) is `names`.
  uint32_t name_set_id = 0;

  bool SameLabels(const LabelPlan& other) const {
    return disabled == other.disabled && names == other.names && sources == other.sources;
  }
};

// The series tables of the aggregator: the four request metrics, the two gRPC message counters,
// the four TCP metrics.
enum class MetricFamily : uint8_t { kRequest, kMessage, kTcp };
inline constexpr size_t kMetricFamilyCount = 3;
MetricFamily FamilyOf(IstioMetric metric);
inline constexpr uint16_t MetricBit(IstioMetric metric) {
  return static_cast<uint16_t>(1u << static_cast<unsigned>(metric));
}

// Metrics of one family that one record updates with one plan (their plans are equal for its
// mode): one series lookup for all of them.
struct PlanGroup {
  uint16_t metrics = 0;                             // MetricBit()s
  IstioMetric metric = IstioMetric::kRequestCount;  // one of them: plan(metric, mode) is the plan
};

// The label names of name set `id` (LabelPlan::name_set_id). Interned for the life of the
// process (a handful per policy); the reference stays valid. Thread-safe.
const std::vector<std::string>& LabelNameSet(uint32_t id);

class MetricLabelPlans {
 public:
  // Istio's standard labels on every metric, nothing disabled.
  MetricLabelPlans();

  const LabelPlan& plan(IstioMetric metric, RecordMode mode) const {
    return plans_[static_cast<size_t>(metric)][static_cast<size_t>(mode)];
  }
  // Lower-case names of the request headers some value reads, sorted: the proxies' header
  // capture list (proxy option capture_request_headers) must include them.
  const std::vector<std::string>& captured_headers() const { return captured_headers_; }
  // Largest number of labels of any plan.
  size_t max_labels() const { return max_labels_; }
  // The enabled metrics of `family` for records of `mode`, grouped by equal plans.
  const std::vector<PlanGroup>& groups(MetricFamily family, RecordMode mode) const {
    return groups_[static_cast<size_t>(family)][static_cast<size_t>(mode)];
  }

 private:
  friend absl::StatusOr<MetricLabelPlans> CompileMetricLabelPlans(
      const std::vector<MetricOverrideConfig>&, const std::optional<std::vector<std::string>>&);
  void Finish();

  std::array<std::array<LabelPlan, kRecordModeCount>, kIstioMetricCount> plans_;
  std::vector<std::string> captured_headers_;
  size_t max_labels_ = 0;
  std::array<std::array<std::vector<PlanGroup>, kRecordModeCount>, kMetricFamilyCount> groups_;
};

// Validates the overrides and the keep list and compiles them; errors name the YAML path.
absl::StatusOr<MetricLabelPlans> CompileMetricLabelPlans(
    const std::vector<MetricOverrideConfig>& overrides,
    const std::optional<std::vector<std::string>>& keep_labels);

// The value of `source` for `record`. `standard` is IstioRequestLabelValues(record, scratch);
// views point into `record`, `scratch`, `source` or static text.
std::string_view EvaluateLabel(const LabelSource& source, const meshtel::v1::RequestRecord& record,
                               std::span<const std::string_view> standard,
                               const IstioLabelScratch& scratch);

}  // namespace meshtel::collector
