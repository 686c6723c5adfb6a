#pragma once
// CollectorConfig: everything meshtel-collector reads from its YAML file.
//
// Each field carries its default in the declaration; docs/configuration.md lists the same
// defaults. LoadCollectorConfig() rejects unknown keys and invalid values with an error naming
// the YAML path and the value.

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "collector/common/host_port.h"
#include "yaml-cpp/yaml.h"

namespace meshtel::collector {

struct IngestConfig {
  // Where the RecordService gRPC server listens for proxies. Default: 0.0.0.0:15140
  common::HostPort listen{"0.0.0.0", 15140};
  // A RecordBatch larger than this (serialized) is rejected with RESOURCE_EXHAUSTED and the
  // stream goes on. Messages over 4x this size end the stream. Default: 4 MiB
  uint64_t max_batch_bytes = 4 << 20;

  absl::Status Validate() const;
};

struct AdminConfig {
  // Where the admin HTTP server (/metrics, /healthz, /readyz) listens. Default: 0.0.0.0:15141
  common::HostPort listen{"0.0.0.0", 15141};
};

struct StoreConfig {
  // Directory of the embedded RocksDB database; created when missing. Default: ./meshtel-data
  std::string data_dir = "./meshtel-data";

  absl::Status Validate() const;
};

struct MetricsConfig {
  // Label sets each Istio metric may hold; records with a new label set beyond that update the
  // metric's one overflow series (every label "__overflow__") and are counted in
  // meshtel_metrics_series_overflow_total. 1..10000000. Default: 10000
  uint64_t max_series_per_metric = 10000;
  // A series not updated for this long is removed (a later record creates it again, from zero).
  // 0 keeps series for the life of the process; otherwise at least 1s. Default: 10m
  absl::Duration series_idle_timeout = absl::Minutes(10);

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
  MetricsConfig metrics;

  absl::Status Validate() const;
};

// Parses a YAML document (already loaded) into a validated config.
absl::StatusOr<CollectorConfig> ParseCollectorConfig(const YAML::Node& root);
// Loads and validates a YAML file; an empty path yields the defaults.
absl::StatusOr<CollectorConfig> LoadCollectorConfig(const std::string& file_path);

}  // namespace meshtel::collector
