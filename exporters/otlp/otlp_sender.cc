#include "exporters/otlp/otlp_sender.h"

#include <utility>

#include "absl/time/clock.h"
#include "exporters/common/grpc_channel.h"
#include "exporters/loki/loki_sender.h"
#include "fmt/format.h"
#include "google/rpc/status.pb.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"
#include "spdlog/spdlog.h"

namespace meshtel::exporters {
namespace {

constexpr size_t kDetailBodyBytes = 200;

std::string HttpDetail(const common::HttpResponse& response) {
  std::string detail = fmt::format("HTTP {}", response.status);
  if (response.body.empty()) return detail;
  google::rpc::Status status;
  const std::optional<std::string> type = response.Header("Content-Type");
  if (type && type->starts_with(kOtlpProtobufContentType) &&
      status.ParseFromString(response.body) && !status.message().empty()) {
    return fmt::format("{}: {}", detail, status.message().substr(0, kDetailBodyBytes));
  }
  return fmt::format("{}: {}", detail, response.body.substr(0, kDetailBodyBytes));
}

}  // namespace

collector::SendResult OtlpHttpVerdict(const common::HttpResponse& response, absl::Time now) {
  collector::SendResult result;
  result.detail = HttpDetail(response);
  const int status = response.status;
  const auto retry_after = [&]() -> std::optional<absl::Duration> {
    const std::optional<std::string> header = response.Header("Retry-After");
    if (!header) return std::nullopt;
    return ParseRetryAfter(*header, now);
  };
  if (status >= 200 && status < 300) {
    result.verdict = collector::SendVerdict::kOk;
    result.detail = fmt::format("HTTP {}", status);  // the body is the protobuf response
  } else if (status == 429) {
    result.verdict = collector::SendVerdict::kRetryable;
    result.throttled = true;
    result.retry_after = retry_after();
  } else if (status == 502 || status == 503 || status == 504) {
    result.verdict = collector::SendVerdict::kRetryable;
    result.retry_after = retry_after();
  } else {
    // Not retried (the spec's rule). Credentials, permissions, path or method refused: the
    // records are not at fault, so the payload is set aside whole, not split.
    result.verdict = collector::SendVerdict::kPermanent;
    result.request_refused = status == 401 || status == 403 || status == 404 || status == 405;
  }
  return result;
}

void ApplyPartialSuccess(const std::string& response, prometheus::Counter* rejected_spans,
                         collector::SendResult& result) {
  if (response.empty()) return;
  opentelemetry::proto::collector::trace::v1::ExportTraceServiceResponse parsed;
  if (!parsed.ParseFromString(response)) {
    result.detail += " (the answer is not an ExportTraceServiceResponse)";
    return;
  }
  if (!parsed.has_partial_success()) return;
  const int64_t rejected = parsed.partial_success().rejected_spans();
  const std::string& message = parsed.partial_success().error_message();
  if (rejected > 0 && rejected_spans != nullptr) {
    rejected_spans->Increment(static_cast<double>(rejected));
  }
  if (rejected > 0 || !message.empty()) {
    result.detail += fmt::format(" (partial success: {} spans rejected{}{})", rejected,
                                 message.empty() ? "" : ": ", message.substr(0, kDetailBodyBytes));
    spdlog::warn("otlp export: {}", result.detail);
  }
}

OtlpSender::OtlpSender(const OtlpConfig& config, prometheus::Counter* rejected_spans)
    : config_(config), rejected_spans_(rejected_spans) {
  if (config_.protocol == OtlpProtocol::kGrpc) {
    grpc_options_.timeout = config_.timeout;
    grpc_options_.metadata = config_.headers;
    grpc_options_.gzip = config_.compression == OtlpCompression::kGzip;
    channel_ = CreateExporterChannel(config_.grpc_target, config_.tls);
    stub_ = std::make_unique<grpc::GenericStub>(channel_);
  } else {
    common::HttpClientOptions options;
    options.timeout = config_.timeout;
    options.tls = common::HttpTlsOptions::From(config_.tls);
    http_ = std::make_unique<common::HttpClient>(config_.http_url, options);
    // The client holds the key now; the sender keeps no copy of it.
    config_.tls.key_pem.clear();
    http_headers_.emplace_back("User-Agent", fmt::format("meshtel/{}", MESHTEL_VERSION));
    for (const auto& header : config_.headers) http_headers_.push_back(header);
  }
}

absl::Status OtlpSender::tls_status() const {
  return http_ != nullptr ? http_->tls_status() : absl::OkStatus();
}

collector::SendResult OtlpSender::Send(const collector::Payload& payload) {
  return config_.protocol == OtlpProtocol::kGrpc ? SendGrpc(payload) : SendHttp(payload);
}

collector::SendResult OtlpSender::SendGrpc(const collector::Payload& payload) {
  std::string response;
  const grpc::Status status =
      GrpcUnaryCall(*stub_, std::string(kOtlpExportMethod), payload.body, grpc_options_, &response);
  collector::SendResult result = GrpcVerdict(status, ResourceExhausted::kRetryableWithRetryInfo);
  if (result.verdict == collector::SendVerdict::kOk) {
    ApplyPartialSuccess(response, rejected_spans_, result);
  } else {
    spdlog::debug("otlp export of {} spans failed: {}", payload.entries, result.detail);
  }
  return result;
}

collector::SendResult OtlpSender::SendHttp(const collector::Payload& payload) {
  common::HttpHeaders headers = http_headers_;
  headers.emplace_back("Content-Type", payload.content_type);
  if (!payload.content_encoding.empty()) {
    headers.emplace_back("Content-Encoding", payload.content_encoding);
  }
  absl::StatusOr<common::HttpResponse> response =
      http_->Post(config_.http_url.target, headers, payload.body);
  if (!response.ok()) {
    collector::SendResult result;
    result.verdict = collector::SendVerdict::kRetryable;
    result.detail = std::string(response.status().message());
    spdlog::debug("otlp export of {} spans failed: {}", payload.entries, result.detail);
    return result;
  }
  collector::SendResult result = OtlpHttpVerdict(*response, absl::Now());
  if (result.verdict == collector::SendVerdict::kOk) {
    const std::optional<std::string> type = response->Header("Content-Type");
    if (!type || type->starts_with(kOtlpProtobufContentType)) {
      ApplyPartialSuccess(response->body, rejected_spans_, result);
    }
  } else {
    spdlog::debug("otlp export of {} spans failed: {}", payload.entries, result.detail);
  }
  return result;
}

}  // namespace meshtel::exporters
