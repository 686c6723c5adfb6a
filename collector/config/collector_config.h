#pragma once
// CollectorConfig: everything meshtel-collector reads from its YAML file.
//
// Each field carries its default in the declaration; docs/configuration.md lists the same
// defaults. LoadCollectorConfig() rejects unknown keys and invalid values with an error naming
// the YAML path and the value.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "collector/common/host_port.h"
#include "collector/logs/access_log_format.h"
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
  // When a batch counts as stored (and is acknowledged to the proxy): "fsync" once the WAL is
  // synced to disk (survives power loss; concurrent batches share one sync), "process" once the
  // WAL is written to the operating system (survives a kill of the collector, not of the
  // machine). Default: fsync
  std::string durability = "fsync";

  absl::Status Validate() const;
};

struct AccessLogConfig {
  // TEXT or JSON (Istio's MeshConfig accessLogEncoding). Default: TEXT
  AccessLogEncoding encoding = AccessLogEncoding::kText;
  // TEXT only: an Envoy format string. Default: "" = Istio's default TEXT format
  std::string format;
  // JSON only: key -> Envoy format string (as Envoy's json_format). Default: empty = Istio's
  // default JSON keys
  std::vector<AccessLogJsonField> json_format;

  // The compiled format; errors name the field ("access_log.format: unknown operator %FOO% at
  // offset 12", "access_log.json_format.status: ...").
  absl::StatusOr<AccessLogFormat> Compile() const;
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

  absl::Status Validate() const;
};

// Parses a YAML document (already loaded) into a validated config.
absl::StatusOr<CollectorConfig> ParseCollectorConfig(const YAML::Node& root);
// Loads and validates a YAML file; an empty path yields the defaults.
absl::StatusOr<CollectorConfig> LoadCollectorConfig(const std::string& file_path);

}  // namespace meshtel::collector
