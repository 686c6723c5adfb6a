#pragma once
// The Jaeger exporter: stored spans sent to Jaeger's api_v2 gRPC collector
// (`/jaeger.api_v2.CollectorService/PostSpans`, wire-facts §3), which Jaeger v1 and v2 and
// Grafana Tempo's Jaeger receiver accept. Retried: UNAVAILABLE, DEADLINE_EXCEEDED,
// RESOURCE_EXHAUSTED and the other transient gRPC codes (exporters/common/grpc_call.h).
// Dropped (dead letters): spans without valid ids (Measure), payloads answered INVALID_ARGUMENT
// or another permanent code. This file holds its settings (the `jaeger:` block of one
// `exporters:` entry) and the factory; the encoder and sender are jaeger_encoder.h and
// jaeger_sender.h.
//
// Errors: ParseJaegerConfig() and BuildJaegerExporter() return InvalidArgument naming the full
// YAML path and the offending value ("exporters[0].jaeger.endpoint: is required"). Building opens
// no connection (gRPC channels connect on the first call).
// Threading: pure functions; the exporter they build is used by one delivery thread.

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "collector/common/tls_config.h"
#include "collector/config/collector_config.h"
#include "collector/delivery/exporter.h"
#include "yaml-cpp/yaml.h"

namespace meshtel::exporters {

// Jaeger's api_v2 gRPC collector port, used when `endpoint` names no port.
inline constexpr uint16_t kJaegerGrpcPort = 14250;
// The gRPC method (package jaeger.api_v2, service CollectorService).
inline constexpr std::string_view kJaegerPostSpansMethod =
    "/jaeger.api_v2.CollectorService/PostSpans";
// The content type of a Jaeger payload: length-delimited PostSpansRequests (jaeger_encoder.h).
inline constexpr std::string_view kJaegerPayloadContentType =
    "application/x-meshtel-delimited-jaeger-post-spans";

struct JaegerConfig {
  // The collector's gRPC address, "host:port" ("host" alone means port 14250). Required.
  std::string endpoint;
  // The most one PostSpans call takes (the gRPC deadline). Default: 10s
  absl::Duration timeout = absl::Seconds(10);
  // gRPC metadata sent with every call (keys lower-cased), e.g. a tenant header. Default: none
  std::vector<std::pair<std::string, std::string>> headers;
  // TLS for the channel (collector/common/tls_config.h, exporters/common/grpc_channel.h).
  // Default: off (plaintext)
  common::TlsConfig tls;
};

// Reads the `jaeger:` block at `path` ("exporters[0].jaeger"); checks every value.
absl::StatusOr<JaegerConfig> ParseJaegerConfig(const YAML::Node& settings, const std::string& path);

// Builds the exporter for one `exporters:` entry of type jaeger. The entry's family must be
// spans (the default for jaeger): `exporters[i].family: 'logs'` is refused.
absl::StatusOr<collector::Exporter> BuildJaegerExporter(const collector::ExporterConfig& config);

}  // namespace meshtel::exporters
