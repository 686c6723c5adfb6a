#pragma once
// AccessLogConfig: how access-log lines are rendered (the `access_log:` keys encoding, format
// and json_format), shared by the collector's config and the proxy's own access log.
//
// Errors: Compile() returns InvalidArgument naming the YAML path under `path` ("access_log"):
// "access_log.format: unknown operator %FOO% at offset 12", "access_log.json_format.status:
// ...". ReadAccessLogFormat() records its errors in the YamlMap (which names the path).
// Threading: plain data and pure functions.

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "collector/common/yaml_map.h"
#include "collector/logs/access_log_format.h"

namespace meshtel::collector {

struct AccessLogConfig {
  // TEXT or JSON (Istio's MeshConfig accessLogEncoding). Default: TEXT
  AccessLogEncoding encoding = AccessLogEncoding::kText;
  // TEXT only: an Envoy format string. Default: "" = Istio's default TEXT format
  std::string format;
  // JSON only: key -> Envoy format string (as Envoy's json_format). Default: empty = Istio's
  // default JSON keys
  std::vector<AccessLogJsonField> json_format;

  // The compiled format; errors name the field under `path` (the YAML path of the block).
  absl::StatusOr<AccessLogFormat> Compile(const std::string& path = "access_log") const;
  absl::Status Validate(const std::string& path = "access_log") const;
};

// Reads the keys encoding (TEXT|JSON), format and json_format of `map` into `config`; other
// keys of the block are the caller's to read.
void ReadAccessLogFormat(common::YamlMap& map, AccessLogConfig& config);

}  // namespace meshtel::collector
