#pragma once
// CollectorConfig: everything meshtel-collector reads from its YAML file.
//
// Each field carries its default in the declaration; docs/configuration.md lists the same
// defaults. LoadCollectorConfig() rejects unknown keys and invalid values with an error naming
// the YAML path and the value.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "collector/common/host_port.h"
#include "collector/logs/access_log_config.h"
#include "collector/logs/access_log_format.h"
#include "collector/metrics/metric_overrides.h"
#include "collector/metrics/remote_write_config.h"
#include "collector/traces/traces_config.h"
#include "yaml-cpp/yaml.h"

namespace meshtel::collector {

// ingest.otlp: the OTLP receiver (gRPC TraceService/LogsService Export and HTTP POST /v1/traces,
// /v1/logs; docs/ingest.md "## OTLP").
struct OtlpReceiverConfig {
  // Serve both OTLP transports. Default: false
  bool enabled = false;
  // Where the OTLP gRPC server listens. Default: 0.0.0.0:4317
  common::HostPort grpc_listen{"0.0.0.0", 4317};
  // Where the OTLP/HTTP server listens. Default: 0.0.0.0:4318
  common::HostPort http_listen{"0.0.0.0", 4318};
  // The largest request accepted, counted after decompression: larger ones get HTTP 413 / gRPC
  // RESOURCE_EXHAUSTED. Default: 64 MiB
  uint64_t max_request_bytes = 64 << 20;

  absl::Status Validate() const;
};

// ingest.als: the Envoy gRPC Access Log Service v3 receiver (collector/ingest/als_server.h).
struct AlsConfig {
  // Whether the receiver runs. Default: false
  bool enabled = false;
  // Where it listens for Envoy's StreamAccessLogs streams. Default: 0.0.0.0:15142
  common::HostPort listen{"0.0.0.0", 15142};
  // A StreamAccessLogsMessage larger than this is counted, logged and skipped (the stream ends
  // when it is the first of its stream); over 4x this gRPC ends the stream. Default: 4 MiB
  uint64_t max_message_bytes = 4 << 20;

  absl::Status Validate() const;
};

struct IngestConfig {
  // Where the RecordService gRPC server listens for proxies. Default: 0.0.0.0:15140
  common::HostPort listen{"0.0.0.0", 15140};
  // A RecordBatch larger than this (serialized) is rejected with RESOURCE_EXHAUSTED and the
  // stream goes on. Messages over 4x this size end the stream. Default: 4 MiB
  uint64_t max_batch_bytes = 4 << 20;
  OtlpReceiverConfig otlp;
  AlsConfig als;

  absl::Status Validate() const;
};

struct AdminConfig {
  // Where the admin HTTP server (/metrics, /healthz, /readyz) listens. Default: 0.0.0.0:15141
  common::HostPort listen{"0.0.0.0", 15141};
  // The bearer token the admin server's write endpoints (POST /api/replay, ...) require in
  // `Authorization: Bearer <token>`. Empty: they answer only to clients on a loopback address.
  // Default: empty
  std::string token;
};

struct StoreConfig {
  // Directory of the embedded RocksDB database; created when missing. Default: ./meshtel-data
  std::string data_dir = "./meshtel-data";
  // When a batch counts as stored (and is acknowledged to the proxy): "fsync" once the WAL is
  // synced to disk (survives power loss; concurrent batches share one sync), "process" once the
  // WAL is written to the operating system (survives a kill of the collector, not of the
  // machine). Default: fsync
  std::string durability = "fsync";
  // Records older than this (by the time they were stored) are deleted, delivered or not.
  // Default: 168h (7 days)
  absl::Duration max_age = absl::Hours(168);
  // The store's directory is kept under this many bytes. RocksDB needs working room beside the
  // records (WAL, memtables, compaction outputs: about 8% of 10 GiB, up to half of a small
  // limit); of the rest, past 85% the oldest records are deleted down to 70%, delivered or not,
  // and when it is full new batches are refused (the proxies keep and resend them) until
  // retention has made room. Default: 10 GiB
  uint64_t max_bytes = uint64_t{10} << 30;
  // How often retention checks age and size (it also runs after every max_bytes/20 bytes
  // written). Default: 10s
  absl::Duration retention_interval = absl::Seconds(10);

  absl::Status Validate() const;
};

// How the delivery engine cuts an exporter's batches.
struct ExporterBatchConfig {
  // Records per payload at most. Default: 1000
  uint64_t max_records = 1000;
  // Bytes per payload at most, before compression, as the exporter's encoder measures them.
  // Default: 1 MiB
  uint64_t max_bytes = 1 << 20;
  // How long a partial batch waits for more records before it is sent. Default: 1s
  absl::Duration max_wait = absl::Seconds(1);
};

// How the delivery engine retries a payload the backend did not take.
struct ExporterRetryConfig {
  // The first wait after a retryable failure; each further failure doubles it (with full
  // jitter). Default: 500ms
  absl::Duration initial_backoff = absl::Milliseconds(500);
  // The longest wait between two tries. Default: 30s
  absl::Duration max_backoff = absl::Seconds(30);
};

// One entry of `exporters:`. The type's own settings (`exporters[i].<type>`) are read by that
// exporter's factory, which names their paths in its errors.
struct ExporterConfig {
  // Unique among the exporters; names the exporter's cursor and counters. Required.
  std::string name;
  // The backend: loki, fluentd, jaeger or otlp. Required.
  std::string type;
  // Which stored records it delivers: logs (access logs) or spans. jaeger and otlp take spans
  // only. Default: spans for jaeger and otlp, logs for the others
  std::string family = "logs";
  ExporterBatchConfig batch;
  ExporterRetryConfig retry;
  // The `<type>:` block as written, and its path ("exporters[0].loki").
  YAML::Node settings;
  std::string settings_path;
};

// Checks the engine's fields of one exporter; `path` is its YAML path ("exporters[0]").
absl::Status ValidateExporter(const ExporterConfig& exporter, std::string_view path);

struct MetricsConfig {
  // Label sets each Istio metric may hold; records with a new label set beyond that update the
  // metric's one overflow series (every label "__overflow__") and are counted in
  // meshtel_metrics_series_overflow_total. 1..10000000. Default: 10000
  uint64_t max_series_per_metric = 10000;
  // A series not updated for this long is removed (a later record creates it again, from zero).
  // 0 keeps series for the life of the process; otherwise at least 1s. Default: 10m
  absl::Duration series_idle_timeout = absl::Minutes(10);
  // Prometheus remote write receivers the metrics are pushed to (remote_write_config.h).
  // Default: none
  std::vector<RemoteWriteConfig> remote_write;
  // Istio Telemetry API tag overrides and disabled metrics, mesh-wide (metric_overrides.h).
  // Default: none
  std::vector<MetricOverrideConfig> overrides;
  // When set, the only labels istio_* metrics keep (applied after the overrides). Default: unset
  // (every label)
  std::optional<std::vector<std::string>> keep_labels;

  // Validates, compiling the overrides (CompileMetricLabelPlans) once.
  absl::Status Validate() const;
  // The compiled overrides and keep list; errors as Validate().
  absl::StatusOr<MetricLabelPlans> CompileLabelPlans() const;
};

// policy: the central telemetry policy (collector/policy/telemetry_policy.h, docs/policy.md)
// and how the collector follows changes to it and to its own config file.
struct PolicyConfig {
  // The policy file (Istio Telemetry resources and a MeshConfig). Empty: no policy; every
  // workload gets this config's settings. Default: ""
  std::string file;
  // How often the policy file and the collector's config file are checked for a change (a
  // change reloads them, as SIGHUP does); 0 = only on SIGHUP. 0 or at least 100ms. Default: 1s
  absl::Duration watch_interval = absl::Seconds(1);

  absl::Status Validate() const;
};

struct CollectorConfig {
  // trace, debug, info, warn, error, critical or off. Default: info
  std::string log_level = "info";
  // How long SIGTERM waits for open streams to finish before closing them. Default: 5s
  absl::Duration shutdown_grace = absl::Seconds(5);
  IngestConfig ingest;
  AdminConfig admin;
  StoreConfig store;
  AccessLogConfig access_log;
  // The backends that stored records are delivered to, each at its own pace. Default: none
  std::vector<ExporterConfig> exporters;
  MetricsConfig metrics;
  TracesConfig traces;
  PolicyConfig policy;

  absl::Status Validate() const;
};

// Parses a YAML document (already loaded) into a validated config.
absl::StatusOr<CollectorConfig> ParseCollectorConfig(const YAML::Node& root);
// Loads and validates a YAML file; an empty path yields the defaults.
absl::StatusOr<CollectorConfig> LoadCollectorConfig(const std::string& file_path);

}  // namespace meshtel::collector
