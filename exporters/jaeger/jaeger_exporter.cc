#include "exporters/jaeger/jaeger_exporter.h"

#include <memory>
#include <utility>

#include "absl/status/status.h"
#include "collector/common/host_port.h"
#include "collector/common/yaml_map.h"
#include "exporters/common/trace_export.h"
#include "exporters/jaeger/jaeger_encoder.h"
#include "exporters/jaeger/jaeger_sender.h"
#include "fmt/format.h"

namespace meshtel::exporters {
namespace {

// "host" or "[v6]" alone take Jaeger's port; otherwise a HostPort text with a port other than 0.
absl::StatusOr<std::string> GrpcTarget(const std::string& text, uint16_t default_port) {
  if (!text.empty() && text.front() == '[' && text.back() == ']') {
    return fmt::format("{}:{}", text, default_port);
  }
  if (!text.empty() && text.find(':') == std::string::npos) {
    return fmt::format("{}:{}", text, default_port);
  }
  absl::StatusOr<common::HostPort> parsed = common::ParseHostPort(text);
  if (!parsed.ok()) return parsed.status();
  if (parsed->port == 0) return absl::InvalidArgumentError("port 0 is not a destination port");
  return parsed->ToString();
}

}  // namespace

absl::StatusOr<JaegerConfig> ParseJaegerConfig(const YAML::Node& settings,
                                               const std::string& path) {
  JaegerConfig config;
  common::YamlMap map(settings, path);
  auto fail = [&](std::string_view key, std::string_view what) {
    return absl::InvalidArgumentError(fmt::format("{}: {}", map.PathOf(key), what));
  };
  std::string endpoint;
  map.Read("endpoint", endpoint);
  map.Read("timeout", config.timeout);
  map.Read("headers", config.headers);
  absl::StatusOr<common::TlsConfig> tls = common::ReadTlsConfig(map);
  if (!tls.ok()) return tls.status();
  config.tls = *std::move(tls);
  if (absl::Status status = map.Finish(); !status.ok()) return status;

  if (endpoint.empty())
    return fail("endpoint", "is required (host:port of Jaeger's gRPC collector)");
  if (endpoint.find("://") != std::string::npos) {
    return fail("endpoint", fmt::format("'{}' must be host:port, without a scheme", endpoint));
  }
  absl::StatusOr<std::string> target = GrpcTarget(endpoint, kJaegerGrpcPort);
  if (!target.ok()) {
    return fail("endpoint",
                fmt::format("'{}': {}", endpoint, std::string(target.status().message())));
  }
  config.endpoint = *std::move(target);
  if (config.timeout <= absl::ZeroDuration()) {
    return fail("timeout",
                fmt::format("'{}' must be more than 0", absl::FormatDuration(config.timeout)));
  }
  if (absl::Status status = CheckHeaders(config.headers, map.PathOf("headers"), /*grpc=*/true);
      !status.ok()) {
    return status;
  }
  return config;
}

absl::StatusOr<collector::Exporter> BuildJaegerExporter(const collector::ExporterConfig& config) {
  const std::string path =
      config.settings_path.empty() ? fmt::format("{}.jaeger", config.name) : config.settings_path;
  if (config.family != "spans") {
    const std::string entry = path.ends_with(".jaeger") ? path.substr(0, path.size() - 7) : path;
    return absl::InvalidArgumentError(fmt::format(
        "{}.family: '{}': a jaeger exporter delivers spans only", entry, config.family));
  }
  absl::StatusOr<JaegerConfig> jaeger = ParseJaegerConfig(config.settings, path);
  if (!jaeger.ok()) return jaeger.status();
  collector::Exporter exporter;
  exporter.name = config.name;
  exporter.type = "jaeger";
  exporter.family = collector::RecordFamily::kSpans;
  exporter.encoder = std::make_unique<JaegerEncoder>();
  exporter.sender = std::make_unique<JaegerSender>(*jaeger);
  return exporter;
}

}  // namespace meshtel::exporters
