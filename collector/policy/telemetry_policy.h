#pragma once
// TelemetryPolicy: the operator's telemetry levers, in the shape of Istio's Telemetry API and
// MeshConfig (wire-facts §8.4–8.6), read from the collector's policy file (`policy.file`), and
// resolved per workload.
//
// The file is a YAML stream of resources (`---` between documents; a `kind: List` with `items`,
// as `kubectl get -o yaml` prints, counts as its items):
//
//   apiVersion: meshtel.io/v1
//   kind: MeshConfig                 # at most one; every field optional
//   spec:
//     rootNamespace: istio-system    # Telemetry resources here without selector are mesh-wide
//     accessLogEncoding: TEXT        # TEXT | JSON
//     accessLogFormat: ""            # TEXT: an Envoy format string; JSON: a JSON object text
//                                    # '{"code": "%RESPONSE_CODE%"}'; "" = Istio's default
//     defaultConfig: {tracing: {sampling: 1.0}}   # the proxies' rate when no Telemetry sets one
//     extensionProviders:            # names the Telemetry resources' providers refer to
//       - name: loki
//         exporters: [loki-main]     # collector `exporters[].name`s this provider sends to
//       - name: tempo
//         exporters: [tempo-otlp]
//     defaultProviders: {tracing: [tempo], metrics: [prometheus], accessLogging: [loki]}
//   ---
//   apiVersion: telemetry.istio.io/v1   # v1alpha1 and v1 accepted
//   kind: Telemetry
//   metadata: {name: reviews, namespace: shop}
//   spec:
//     selector: {matchLabels: {app: reviews}}    # absent: the whole namespace (or mesh)
//     tracing:
//       - match: {mode: CLIENT_AND_SERVER}
//         randomSamplingPercentage: 100
//         disableSpanReporting: false
//         customTags:
//           tier: {literal: {value: gold}}
//           user: {header: {name: x-user, defaultValue: anonymous}}
//           pod: {environment: {name: POD_NAME}}
//           route: {formatter: {value: "%ROUTE_NAME%"}}
//         phaseSpans: true               # meshtel: the proxy-phase child spans
//     metrics:
//       - providers: [{name: prometheus}]
//         overrides:                     # as metrics.overrides (metric_overrides.h)
//           - match: {metric: REQUEST_COUNT, mode: CLIENT}
//             tagOverrides: {user_tier: {value: "request.headers['x-user-tier']"}}
//     accessLogging:
//       - match: {mode: SERVER}
//         providers: [{name: loki}]
//         filter: {expression: "response.code >= 500"}
//         disabled: false
//         logFormat: {text: "%RESPONSE_CODE% %REQ(:PATH)%\n"}   # meshtel: per workload;
//                                         # or {labels: {code: "%RESPONSE_CODE%"}} for JSON
//
// Built-in provider names: `prometheus` (metrics: the collector's /metrics and remote write).
// Without defaultProviders: metrics go to prometheus, spans to every span exporter, access logs
// to every log exporter (the collector's behaviour without a policy).
//
// Resolution (Resolve): for one workload (namespace, labels), the resources that apply are the
// mesh-wide one (root namespace, no selector), the namespace's (its namespace, no selector) and
// every resource of its namespace whose selector.matchLabels all match its labels (in name
// order), applied in that order: workload > namespace > mesh.
// - tracing / accessLogging: for each side (CLIENT = the outbound proxy's records,
//   reporter=source; SERVER = the inbound proxy's, reporter=destination) every entry whose
//   match.mode covers that side sets the fields it gives; customTags given replace the parent's
//   whole map (as Istio); providers given replace the parent's.
// - metrics: the overrides of every entry are appended in order (mesh first), so a later
//   `disabled: false` re-enables what a parent disabled (as Istio).
// Istio applies one accessLogging config to both sides; meshtel keeps CLIENT and SERVER apart.
//
// Validation (Parse) names the document and the path of a bad field:
//   "document 2 (Telemetry shop/reviews): spec.tracing[0].randomSamplingPercentage: 140 is not
//    in [0,100]"
// and rejects unknown fields and kinds, two selector-less Telemetry resources in one namespace,
// two resources with one namespace/name, providers no MeshConfig names (besides the built-ins),
// tag overrides that do not compile (CompileMetricLabelPlans) and access-log formats that do not
// compile. Exporter names are checked against the collector's config by CheckExporters().
//
// Threading: a parsed TelemetryPolicy is immutable; Resolve() is const and safe from any thread.

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "collector/logs/access_log_config.h"
#include "collector/metrics/metric_overrides.h"

namespace meshtel::collector {

// Which proxy of a hop: CLIENT = outbound (reporter=source), SERVER = inbound
// (reporter=destination). Index into the per-side arrays below.
enum class PolicySide : uint8_t { kClient = 0, kServer = 1 };
inline constexpr size_t kPolicySideCount = 2;

// The workload a policy is resolved for.
struct PolicyWorkload {
  std::string namespace_name;
  std::string name;                           // workload name, e.g. "reviews-v1"
  std::map<std::string, std::string> labels;  // pod labels, e.g. app=reviews, version=v1
};

// One spec.tracing[].customTags entry.
struct CustomTag {
  enum class Kind : uint8_t { kLiteral, kHeader, kEnvironment, kFormatter };
  std::string name;  // the span tag
  Kind kind = Kind::kLiteral;
  // kLiteral: the value; kHeader: the lower-case header name; kEnvironment: the variable;
  // kFormatter: an Envoy access-log format string (evaluated by the collector).
  std::string value;
  std::string default_value;  // kHeader / kEnvironment: used when absent

  bool operator==(const CustomTag&) const = default;
};

// The tracing levers in force for one side of one workload.
struct TracingPolicy {
  // nullopt: MeshConfig defaultConfig.tracing.sampling, else the proxy's own setting.
  std::optional<double> random_sampling_percentage;
  bool disable_span_reporting = false;
  std::vector<CustomTag> custom_tags;  // sorted by name
  // nullopt: the collector's traces.phase_spans.
  std::optional<bool> phase_spans;
  // Provider names; empty: defaultProviders.tracing (or every span exporter).
  std::vector<std::string> providers;

  bool operator==(const TracingPolicy&) const = default;
};

// The access-log levers in force for one side of one workload.
struct AccessLogPolicy {
  bool disabled = false;
  // A filter expression (collector/policy/filter_expression.h); "" keeps every record.
  std::string filter;
  std::vector<std::string> providers;  // empty: defaultProviders.accessLogging (or every one)
  // The line format: a logFormat of the workload's resources, else MeshConfig's
  // accessLogEncoding/accessLogFormat; nullopt: the collector's `access_log` block.
  std::optional<AccessLogConfig> format;
};

struct MetricsPolicy {
  // Every applying spec.metrics[].overrides entry, mesh first; empty = the collector's
  // metrics.overrides only.
  std::vector<MetricOverrideConfig> overrides;
  std::vector<std::string> providers;  // empty: defaultProviders.metrics (or prometheus)
};

// Everything in force for one workload.
struct WorkloadPolicy {
  std::array<TracingPolicy, kPolicySideCount> tracing;
  std::array<AccessLogPolicy, kPolicySideCount> access_logging;
  MetricsPolicy metrics;
  // "namespace/name" of each resource applied, in order (for status and debugging).
  std::vector<std::string> applied;
};

// A named destination (MeshConfig extensionProviders[]).
struct ExtensionProvider {
  std::string name;
  std::vector<std::string> exporters;  // collector exporter names
};

struct MeshDefaults {
  std::string root_namespace = "istio-system";
  // accessLogEncoding / accessLogFormat; nullopt when the MeshConfig sets neither.
  std::optional<AccessLogConfig> access_log;
  std::optional<double> default_sampling_percentage;  // defaultConfig.tracing.sampling
  std::vector<ExtensionProvider> extension_providers;
  std::vector<std::string> default_tracing_providers;
  std::vector<std::string> default_metrics_providers;
  std::vector<std::string> default_access_log_providers;
};

class TelemetryPolicy {
 public:
  // No resources: every workload resolves to the collector's own settings.
  TelemetryPolicy() = default;

  // Parses and validates a policy file's text; `source` names it in errors ("policy.yaml").
  static absl::StatusOr<TelemetryPolicy> Parse(std::string_view yaml_text,
                                               std::string_view source = "policy");
  // Reads and parses a file; errors name the path.
  static absl::StatusOr<TelemetryPolicy> Load(const std::string& path);

  // The policy in force for `workload`.
  WorkloadPolicy Resolve(const PolicyWorkload& workload) const;

  // Every exporter a provider names is in `exporter_names`; errors name the provider.
  absl::Status CheckExporters(const std::vector<std::string>& exporter_names) const;

  const MeshDefaults& mesh() const { return mesh_; }
  // A digest of the file's text (16 hex digits): equal for equal files.
  const std::string& digest() const { return digest_; }
  size_t resource_count() const { return resources_.size(); }

  // One Telemetry resource, parsed. Public for the .cc file's helpers.
  struct Resource;

 private:
  MeshDefaults mesh_;
  std::vector<Resource> resources_;  // sorted by (namespace, name)
  std::string digest_;
};

// One parsed spec.tracing[] / spec.accessLogging[] entry: the fields it gives.
struct TracingEntry {
  WorkloadMode mode = WorkloadMode::kClientAndServer;
  std::optional<double> random_sampling_percentage;
  std::optional<bool> disable_span_reporting;
  std::optional<std::vector<CustomTag>> custom_tags;
  std::optional<bool> phase_spans;
  std::optional<std::vector<std::string>> providers;
};

struct AccessLoggingEntry {
  WorkloadMode mode = WorkloadMode::kClientAndServer;
  std::optional<bool> disabled;
  std::optional<std::string> filter;
  std::optional<std::vector<std::string>> providers;
  std::optional<AccessLogConfig> format;
};

struct MetricsEntry {
  std::vector<MetricOverrideConfig> overrides;
  std::optional<std::vector<std::string>> providers;
};

struct TelemetryPolicy::Resource {
  std::string namespace_name;
  std::string name;
  // nullopt: no selector (namespace- or mesh-wide).
  std::optional<std::map<std::string, std::string>> match_labels;
  std::vector<TracingEntry> tracing;
  std::vector<MetricsEntry> metrics;
  std::vector<AccessLoggingEntry> access_logging;
};

}  // namespace meshtel::collector
