#include "exporters/otlp/otlp_exporter.h"

#include <memory>
#include <utility>

#include "absl/status/status.h"
#include "collector/common/host_port.h"
#include "collector/common/yaml_map.h"
#include "exporters/common/trace_export.h"
#include "exporters/otlp/otlp_encoder.h"
#include "exporters/otlp/otlp_sender.h"
#include "fmt/format.h"
#include "prometheus/family.h"

namespace meshtel::exporters {
namespace {

absl::StatusOr<std::string> GrpcTarget(const std::string& text) {
  if (!text.empty() && text.front() == '[' && text.back() == ']') {
    return fmt::format("{}:{}", text, kOtlpGrpcPort);
  }
  if (!text.empty() && text.find(':') == std::string::npos) {
    return fmt::format("{}:{}", text, kOtlpGrpcPort);
  }
  absl::StatusOr<common::HostPort> parsed = common::ParseHostPort(text);
  if (!parsed.ok()) return parsed.status();
  if (parsed->port == 0) return absl::InvalidArgumentError("port 0 is not a destination port");
  return parsed->ToString();
}

}  // namespace

absl::StatusOr<OtlpConfig> ParseOtlpConfig(const YAML::Node& settings, const std::string& path) {
  OtlpConfig config;
  common::YamlMap map(settings, path);
  auto fail = [&](std::string_view key, std::string_view what) {
    return absl::InvalidArgumentError(fmt::format("{}: {}", map.PathOf(key), what));
  };
  std::string protocol = "http/protobuf";
  std::string compression = "none";
  map.Read("protocol", protocol);
  map.Read("endpoint", config.endpoint);
  map.Read("compression", compression);
  map.Read("headers", config.headers);
  map.Read("timeout", config.timeout);
  map.Node("tls");  // read below, once the protocol and endpoint are known
  if (absl::Status status = map.Finish(); !status.ok()) return status;

  if (protocol == "grpc") {
    config.protocol = OtlpProtocol::kGrpc;
  } else if (protocol == "http/protobuf") {
    config.protocol = OtlpProtocol::kHttpProtobuf;
  } else {
    return fail("protocol", fmt::format("'{}' is not grpc or http/protobuf", protocol));
  }
  if (compression == "none") {
    config.compression = OtlpCompression::kNone;
  } else if (compression == "gzip") {
    config.compression = OtlpCompression::kGzip;
  } else {
    return fail("compression", fmt::format("'{}' is not none or gzip", compression));
  }
  if (config.endpoint.empty()) {
    return fail("endpoint",
                config.protocol == OtlpProtocol::kGrpc
                    ? "is required (host:port of the OTLP gRPC receiver)"
                    : "is required (http:// or https:// URL of the OTLP HTTP receiver)");
  }
  if (config.protocol == OtlpProtocol::kGrpc) {
    if (config.endpoint.find("://") != std::string::npos) {
      return fail("endpoint", fmt::format("'{}' must be host:port for protocol grpc, without a "
                                          "scheme",
                                          config.endpoint));
    }
    absl::StatusOr<std::string> target = GrpcTarget(config.endpoint);
    if (!target.ok()) {
      return fail("endpoint",
                  fmt::format("'{}': {}", config.endpoint, std::string(target.status().message())));
    }
    config.grpc_target = *std::move(target);
    absl::StatusOr<common::TlsConfig> tls = common::ReadTlsConfig(map);
    if (!tls.ok()) return tls.status();
    config.tls = *std::move(tls);
  } else {
    absl::StatusOr<common::HttpUrl> url = common::ParseHttpUrl(config.endpoint);
    if (!url.ok()) {
      return fail("endpoint",
                  fmt::format("'{}': {}", config.endpoint, std::string(url.status().message())));
    }
    config.http_url = *std::move(url);
    absl::StatusOr<common::TlsConfig> tls =
        common::ReadUrlTlsConfig(map, "endpoint", config.http_url.https);
    if (!tls.ok()) return tls.status();
    config.tls = *std::move(tls);
    if (config.http_url.target.empty() || config.http_url.target == "/") {
      config.http_url.target = std::string(kOtlpTracesPath);
    }
  }
  if (config.timeout <= absl::ZeroDuration()) {
    return fail("timeout",
                fmt::format("'{}' must be more than 0", absl::FormatDuration(config.timeout)));
  }
  if (absl::Status status = CheckHeaders(config.headers, map.PathOf("headers"),
                                         /*grpc=*/config.protocol == OtlpProtocol::kGrpc);
      !status.ok()) {
    return status;
  }
  return config;
}

prometheus::Counter& OtlpRejectedSpansCounter(prometheus::Registry& registry,
                                              const std::string& name) {
  return prometheus::BuildCounter()
      .Name("meshtel_exporter_otlp_partial_success_rejected_spans_total")
      .Help("Spans an OTLP receiver rejected in a partial success (not retried).")
      .Register(registry)
      .Add({{"exporter", name}});
}

absl::StatusOr<collector::Exporter> BuildOtlpExporter(const collector::ExporterConfig& config,
                                                      prometheus::Registry& registry) {
  const std::string path =
      config.settings_path.empty() ? fmt::format("{}.otlp", config.name) : config.settings_path;
  if (config.family != "spans") {
    const std::string entry = path.ends_with(".otlp") ? path.substr(0, path.size() - 5) : path;
    return absl::InvalidArgumentError(
        fmt::format("{}.family: '{}': an otlp exporter delivers spans only", entry, config.family));
  }
  absl::StatusOr<OtlpConfig> otlp = ParseOtlpConfig(config.settings, path);
  if (!otlp.ok()) return otlp.status();
  collector::Exporter exporter;
  exporter.name = config.name;
  exporter.type = "otlp";
  exporter.family = collector::RecordFamily::kSpans;
  auto sender =
      std::make_unique<OtlpSender>(*otlp, &OtlpRejectedSpansCounter(registry, config.name));
  if (!sender->tls_status().ok()) {
    return absl::InvalidArgumentError(
        fmt::format("{}.tls: {}", path, std::string(sender->tls_status().message())));
  }
  exporter.encoder = std::make_unique<OtlpEncoder>(*otlp);
  exporter.sender = std::move(sender);
  return exporter;
}

}  // namespace meshtel::exporters
