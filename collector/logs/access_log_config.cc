#include "collector/logs/access_log_config.h"

#include "fmt/format.h"

namespace meshtel::collector {

absl::StatusOr<AccessLogFormat> AccessLogConfig::Compile(const std::string& path) const {
  if (encoding == AccessLogEncoding::kText) {
    if (!json_format.empty()) {
      return absl::InvalidArgumentError(
          fmt::format("{}.json_format: only with encoding JSON", path));
    }
    absl::StatusOr<AccessLogFormat> compiled = AccessLogFormat::Compile(format, encoding);
    if (!compiled.ok()) {
      return absl::InvalidArgumentError(
          fmt::format("{}.format: {}", path, std::string(compiled.status().message())));
    }
    return compiled;
  }
  if (!format.empty()) {
    return absl::InvalidArgumentError(
        fmt::format("{0}.format: only with encoding TEXT (JSON takes {0}.json_format)", path));
  }
  for (const auto& [key, value] : json_format) {
    if (key.empty()) {
      return absl::InvalidArgumentError(fmt::format("{}.json_format: a key is empty", path));
    }
  }
  absl::StatusOr<AccessLogFormat> compiled = AccessLogFormat::CompileJson(json_format);
  if (!compiled.ok()) {
    return absl::InvalidArgumentError(
        fmt::format("{}.json_format.{}", path, std::string(compiled.status().message())));
  }
  return compiled;
}

absl::Status AccessLogConfig::Validate(const std::string& path) const {
  return Compile(path).status();
}

void ReadAccessLogFormat(common::YamlMap& map, AccessLogConfig& config) {
  std::string encoding;
  map.Read("encoding", encoding);
  if (encoding == "JSON") {
    config.encoding = AccessLogEncoding::kJson;
  } else if (encoding == "TEXT") {
    config.encoding = AccessLogEncoding::kText;
  } else if (!encoding.empty()) {
    map.Fail(absl::InvalidArgumentError(
        fmt::format("{}: '{}' is not TEXT or JSON", map.PathOf("encoding"), encoding)));
  }
  map.Read("format", config.format);
  map.Read("json_format", config.json_format);
}

}  // namespace meshtel::collector
