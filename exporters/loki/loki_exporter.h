#pragma once
// The Loki exporter: access-log lines and received (OTLP) log records pushed to Loki's push API
// (wire-facts §4) as snappy-compressed protobuf. This file holds its settings (the `loki:` block of
// one `exporters:` entry) and the factory the collector calls; the encoder and sender are in
// loki_encoder.h and loki_sender.h.
//
// Errors: ParseLokiConfig() and BuildLokiExporter() return InvalidArgument naming the full YAML
// path and the offending value ("exporters[0].loki.url: is required"). BuildLokiExporter() opens
// no connection (the sender connects on its first Send()).
// Threading: pure functions; the exporter they build is used by one delivery thread.

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "collector/common/http_client.h"
#include "collector/common/tls_config.h"
#include "collector/config/collector_config.h"
#include "collector/delivery/exporter.h"
#include "collector/logs/access_log_format.h"
#include "collector/logs/access_log_routing.h"
#include "yaml-cpp/yaml.h"

namespace meshtel::exporters {

// A record field a stream label may take its value from: low-cardinality identity fields only.
enum class LokiLabelField {
  kReporter,                     // "source" / "destination"
  kSourceWorkload,               // source.workload
  kSourceNamespace,              // source.namespace
  kSourceApp,                    // source.app
  kSourceVersion,                // source.version
  kSourceCanonicalService,       // source.canonical_service
  kSourceCluster,                // source.cluster
  kDestinationWorkload,          // destination.workload
  kDestinationNamespace,         // destination.namespace
  kDestinationApp,               // destination.app
  kDestinationVersion,           // destination.version
  kDestinationCanonicalService,  // destination.canonical_service
  kDestinationCluster,           // destination.cluster
  kDestinationService,           // destination_service.host
  kDestinationServiceName,       // destination_service.name
  kDestinationServiceNamespace,  // destination_service.namespace
  kRequestProtocol,              // "http" / "grpc" / "tcp"
  kMethod,                       // method
  kResponseCode,                 // "200", "0" when no response was sent
  kResponseCodeClass,            // "2xx", "5xx"; "0xx" when no response was sent
};

// The field's configuration name ("destination_workload").
std::string_view LokiLabelFieldName(LokiLabelField field);

// One stream label: its Loki name and where its value comes from.
struct LokiLabel {
  std::string name;
  LokiLabelField field;
};

// Loki's limit on label names per stream (wire-facts §4.4).
inline constexpr size_t kLokiMaxLabels = 15;

// `name` as Loki names an OpenTelemetry attribute in labels and structured metadata (Prometheus'
// label normalization): every character outside [a-zA-Z0-9_] becomes '_', a leading digit gets
// "key_" in front and a single leading '_' gets "key" ("k8s.pod.name" -> "k8s_pod_name").
std::string LokiAttributeName(std::string_view name);

// The resource attributes Loki's own OTLP ingestion makes stream labels by default
// (default_resource_attributes_as_index_labels), each as the label LokiAttributeName() names:
// service.name -> service_name, service.namespace, service.instance.id, deployment.environment,
// cloud.region, cloud.availability_zone, k8s.cluster.name, k8s.namespace.name, k8s.pod.name,
// k8s.container.name, container.name, k8s.replicaset.name, k8s.deployment.name,
// k8s.statefulset.name, k8s.daemonset.name, k8s.cronjob.name, k8s.job.name.
std::vector<std::pair<std::string, std::string>> DefaultLokiResourceLabels();

struct LokiConfig {
  // The push endpoint, e.g. http://loki:3100/loki/api/v1/push or
  // https://logs-prod-eu-west-0.grafana.net/loki/api/v1/push. Required.
  std::string url;
  common::HttpUrl endpoint;  // `url`, parsed
  // TLS of an https:// url (collector/common/tls_config.h): the CA, client certificate and
  // server name; enabled exactly when the url is https://.
  common::TlsConfig tls;
  // Sent as X-Scope-OrgID when not empty.
  std::string tenant_id;
  // HTTP basic authentication (both set) or a bearer token; not both.
  std::string basic_auth_username;
  std::string basic_auth_password;
  std::string bearer_token;
  // Total time of one push (connect + write + read).
  absl::Duration timeout = absl::Seconds(10);
  // Labels taken from each record. Default: namespace, workload, reporter.
  std::vector<LokiLabel> labels = {{"namespace", LokiLabelField::kDestinationNamespace},
                                   {"workload", LokiLabelField::kDestinationWorkload},
                                   {"reporter", LokiLabelField::kReporter}};
  // Received log records (OTLP): which resource attributes become which stream labels, in
  // order (attribute, label name); an attribute the record lacks gives no label, except
  // service.name, "unknown_service" when missing. Default: DefaultLokiResourceLabels().
  std::vector<std::pair<std::string, std::string>> resource_labels = DefaultLokiResourceLabels();
  // Labels with a fixed value on every stream. Default: job="meshtel".
  std::vector<std::pair<std::string, std::string>> static_labels = {{"job", "meshtel"}};
  // Longest line accepted (Loki's max_line_size); longer records are refused by Measure().
  uint64_t max_line_bytes = 256 * 1024;
  // trace_id and request_id as structured metadata on each entry (when the record has them).
  bool structured_metadata = true;
  // Records older than this (by their start time) are refused by Measure(), as Loki's
  // reject_old_samples_max_age would refuse them (greater_than_max_sample_age).
  absl::Duration reject_older_than = absl::Hours(7 * 24);
  // Records more than this ahead of the collector's clock are refused by Measure(), as Loki's
  // creation_grace_period would refuse them (too_far_in_future); keep it at Loki's value.
  absl::Duration creation_grace_period = absl::Minutes(10);
};

// Reads the `loki:` block at `path` ("exporters[0].loki"); checks every value.
absl::StatusOr<LokiConfig> ParseLokiConfig(const YAML::Node& settings, const std::string& path);

// Builds the exporter for one `exporters:` entry of type loki. `lines` says per record whether
// this exporter delivers it and renders its line (the telemetry policy, or the collector's
// access_log format for every record); the exporter keeps its own copy.
absl::StatusOr<collector::Exporter> BuildLokiExporter(const collector::ExporterConfig& config,
                                                      const collector::AccessLogLines& lines);

}  // namespace meshtel::exporters
