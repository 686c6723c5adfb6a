#pragma once
// The OTLP trace exporter: stored spans sent to an OpenTelemetry Protocol receiver (wire-facts
// §2) — an OpenTelemetry Collector, Grafana Tempo, Jaeger v2 — over gRPC
// (`/opentelemetry.proto.collector.trace.v1.TraceService/Export`, port 4317) or HTTP/protobuf
// (`POST /v1/traces`, port 4318), optionally gzip-compressed.
// Retried exactly as wire-facts §2.3 says: gRPC CANCELLED, DEADLINE_EXCEEDED, ABORTED,
// OUT_OF_RANGE, UNAVAILABLE, DATA_LOSS, and RESOURCE_EXHAUSTED with RetryInfo; HTTP 429, 502, 503,
// 504 (Retry-After honoured); connection failures and timeouts. Every other answer is permanent
// (the delivery engine sets the refused spans aside as dead letters). A partial success is not
// retried: its rejected spans are counted in
// meshtel_exporter_otlp_partial_success_rejected_spans_total{exporter} and the payload is ok.
// This file holds the settings (the `otlp:` block of one `exporters:` entry) and the factory;
// the encoder and sender are otlp_encoder.h and otlp_sender.h.
//
// Errors: ParseOtlpConfig() and BuildOtlpExporter() return InvalidArgument naming the full YAML
// path and the offending value ("exporters[0].otlp.protocol: 'xyz' is not grpc or
// http/protobuf"). Building opens no connection.
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
#include "prometheus/counter.h"
#include "prometheus/registry.h"
#include "yaml-cpp/yaml.h"

namespace meshtel::exporters {

// OTLP's default ports and paths (wire-facts §2.1, §0.4).
inline constexpr uint16_t kOtlpGrpcPort = 4317;
inline constexpr uint16_t kOtlpHttpPort = 4318;
inline constexpr std::string_view kOtlpTracesPath = "/v1/traces";
inline constexpr std::string_view kOtlpExportMethod =
    "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
inline constexpr std::string_view kOtlpProtobufContentType = "application/x-protobuf";

enum class OtlpProtocol { kGrpc, kHttpProtobuf };
enum class OtlpCompression { kNone, kGzip };

struct OtlpConfig {
  // grpc or http/protobuf. Default: http/protobuf (the OpenTelemetry SDKs' default).
  OtlpProtocol protocol = OtlpProtocol::kHttpProtobuf;
  // Where to send. grpc: "host:port" ("host" alone: port 4317). http/protobuf: an http:// or
  // https:// URL; a URL without a path gets /v1/traces, a URL with a path is used as it is.
  // Required.
  std::string endpoint;
  std::string grpc_target;   // grpc: "host:port"
  common::HttpUrl http_url;  // http/protobuf: the parsed URL, target included
  // none or gzip (gRPC: grpc-encoding gzip; HTTP: Content-Encoding gzip). Default: none
  OtlpCompression compression = OtlpCompression::kNone;
  // Sent with every export (HTTP headers, or gRPC metadata with lower-cased keys), e.g.
  // X-Scope-OrgID for a multi-tenant Tempo, Authorization. Default: none
  std::vector<std::pair<std::string, std::string>> headers;
  // The most one export takes (connect, write, answer). Default: 10s
  absl::Duration timeout = absl::Seconds(10);
  // TLS (collector/common/tls_config.h). grpc: for the channel when tls.enabled (default: off,
  // plaintext). http/protobuf: on exactly when the endpoint is https://, with the block's CA,
  // client certificate and server name.
  common::TlsConfig tls;
};

// Reads the `otlp:` block at `path` ("exporters[0].otlp"); checks every value.
absl::StatusOr<OtlpConfig> ParseOtlpConfig(const YAML::Node& settings, const std::string& path);

// The counter of spans an OTLP receiver rejected in partial successes, for exporter `name`, in
// `registry` (meshtel_exporter_otlp_partial_success_rejected_spans_total{exporter="<name>"}).
prometheus::Counter& OtlpRejectedSpansCounter(prometheus::Registry& registry,
                                              const std::string& name);

// Builds the exporter for one `exporters:` entry of type otlp; its counter goes to `registry`,
// which must outlive the exporter. The entry's family must be spans (the default for otlp).
absl::StatusOr<collector::Exporter> BuildOtlpExporter(const collector::ExporterConfig& config,
                                                      prometheus::Registry& registry);

}  // namespace meshtel::exporters
