#pragma once
// RemoteWriteConfig: one entry of the collector's `metrics.remote_write:` list — where and how
// the RemoteWriter (remote_write.h) pushes the metrics. Defaults are in the declarations;
// docs/configuration.md lists the same.
//
// ReadRemoteWriteConfigs() reads the list under `metrics` and validates each entry, reading the
// files of its `tls:` block; errors name the YAML path and the value
// ("metrics.remote_write[0].url: 'ftp://x' ...", "metrics.remote_write[0].tls.ca_file: cannot
// read ..."), unknown keys are rejected. Threading: none (config loading).

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "collector/common/tls_config.h"
#include "collector/common/yaml_map.h"

namespace meshtel::collector {

struct RemoteWriteConfig {
  // The receiver's endpoint, http:// or https:// (e.g. http://prometheus:9090/api/v1/write,
  // https://prometheus-prod-01-eu-west-0.grafana.net/api/prom/push). Required.
  std::string url;
  // TLS of an https:// url (collector/common/tls_config.h: ca_file, cert_file + key_file,
  // server_name); enabled exactly when the url is https://. Default: the system's roots.
  common::TlsConfig tls;
  // How often a snapshot of every sample is pushed. At least 100ms. Default: 15s
  absl::Duration interval = absl::Seconds(15);
  // The deadline of one HTTP request (connect, send, answer). Positive. Default: 10s
  absl::Duration timeout = absl::Seconds(10);
  // Samples per request at most (1..1000000). Default: 2000
  uint64_t max_samples_per_send = 2000;
  // The first wait before retrying a request answered 5xx/429 or failed in transport; each
  // further failure doubles it, up to max_backoff. Default: 100ms / 5s
  absl::Duration min_backoff = absl::Milliseconds(100);
  absl::Duration max_backoff = absl::Seconds(5);
  // `basic_auth: {username, password}`: Authorization: Basic. Default: none
  std::string basic_auth_username;
  std::string basic_auth_password;
  // Authorization: Bearer <token>; not together with basic_auth. Default: none
  std::string bearer_token;
  // Extra request headers (e.g. X-Scope-OrgID for Mimir/Cortex tenants). The remote write headers
  // (Content-Encoding, Content-Type, X-Prometheus-Remote-Write-Version, User-Agent), Host,
  // Content-Length, Connection and — with basic_auth or bearer_token — Authorization cannot be
  // set here. Default: none
  std::vector<std::pair<std::string, std::string>> headers;

  // Checks the values; `path` is the entry's YAML path ("metrics.remote_write[0]").
  absl::Status Validate(std::string_view path) const;
};

// Reads `remote_write` under `metrics` (a list of entries, like Prometheus' `remote_write:`)
// into `out`, validating each entry; errors are recorded in `metrics` (see YamlMap::Finish()).
void ReadRemoteWriteConfigs(common::YamlMap& metrics, std::vector<RemoteWriteConfig>& out);

}  // namespace meshtel::collector
