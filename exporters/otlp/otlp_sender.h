#pragma once
// OtlpSender: sends one OTLP payload (otlp_encoder.h) and turns the answer into a SendResult
// exactly as wire-facts §2.3 says.
//
// gRPC (`protocol: grpc`): a unary TraceService/Export call on an HTTP/2 channel (plaintext, or
// TLS as `tls` says: exporters/common/grpc_channel.h), with
// the configured timeout as deadline, the headers as metadata and, with `compression: gzip`,
// grpc-encoding gzip. The status goes through GrpcVerdict() (exporters/common/grpc_call.h) with
// RESOURCE_EXHAUSTED retryable only when it carries google.rpc.RetryInfo.
// HTTP (`protocol: http/protobuf`): POST of the body to the URL's path (Content-Type
// application/x-protobuf, Content-Encoding gzip when compressed, the headers, User-Agent
// meshtel/<version>) with the project's HTTP client (one kept-alive connection; TLS for an
// https:// endpoint, with `tls`'s CA, client certificate and server name, the server certificate
// always verified):
//   2xx                      kOk (the body, when present, is an ExportTraceServiceResponse)
//   429                      kRetryable, throttled, retry_after from Retry-After
//   502, 503, 504            kRetryable, retry_after from Retry-After
//   any other status         kPermanent (400 bad data, 401/403, 413, 500, ...)
//   transport failure, timeout
//                            kRetryable
// A success whose ExportTraceServiceResponse carries partial_success is kOk (never retried):
// rejected_spans is added to the exporter's partial-success counter and, with error_message,
// written into detail and logged. detail otherwise: "gRPC <CODE>: <message>" or
// "HTTP <status>: <google.rpc.Status message, or the first 200 bytes of the body>".
//
// Threading: one thread at a time. Send() returns within the configured timeout (HttpClient's
// one exception: a hanging DNS resolution). Ownership: owns its channel or connection; the
// counter must outlive the sender.

#include <memory>
#include <string>

#include "absl/time/time.h"
#include "collector/common/http_client.h"
#include "collector/delivery/exporter.h"
#include "exporters/common/grpc_call.h"
#include "exporters/otlp/otlp_exporter.h"
#include "grpcpp/channel.h"
#include "grpcpp/generic/generic_stub.h"
#include "prometheus/counter.h"

namespace meshtel::exporters {

// The verdict for one OTLP/HTTP answer (partial success not included: see ApplyPartialSuccess).
collector::SendResult OtlpHttpVerdict(const common::HttpResponse& response, absl::Time now);

// For a successful export answered with `response` (a serialized ExportTraceServiceResponse,
// possibly empty): adds a partial success's rejected spans to `rejected_spans` (when not null)
// and describes it in `result.detail`.
void ApplyPartialSuccess(const std::string& response, prometheus::Counter* rejected_spans,
                         collector::SendResult& result);

class OtlpSender : public collector::Sender {
 public:
  // `rejected_spans` may be null (nothing counted).
  OtlpSender(const OtlpConfig& config, prometheus::Counter* rejected_spans);

  // collector::Sender
  collector::SendResult Send(const collector::Payload& payload) override;

  // OK, or why OpenSSL refused the TLS settings of an https:// endpoint
  // (HttpClient::tls_status()).
  absl::Status tls_status() const;

 private:
  collector::SendResult SendGrpc(const collector::Payload& payload);
  collector::SendResult SendHttp(const collector::Payload& payload);

  OtlpConfig config_;
  prometheus::Counter* rejected_spans_;
  GrpcCallOptions grpc_options_;
  std::shared_ptr<grpc::Channel> channel_;    // grpc only
  std::unique_ptr<grpc::GenericStub> stub_;   // grpc only
  std::unique_ptr<common::HttpClient> http_;  // http/protobuf only
  common::HttpHeaders http_headers_;          // the same on every export
};

}  // namespace meshtel::exporters
