#pragma once
// Test support: an OTLP trace receiver on 127.0.0.1 with both transports — gRPC (the project's
// generated opentelemetry.proto.collector.trace.v1.TraceService) and HTTP `POST /v1/traces`
// (binary protobuf, gzip when Content-Encoding says so; a TestHttpServer) — that keeps every
// export it is sent and the spans in it, decoded into ReceivedSpan (received_spans.h). Each
// request is also decoded with the official OTLP schema when ../shared is present (HTTP: the
// received bytes after gunzip; gRPC: re-serialized from the project's decode, which keeps
// unknown fields): differences land in OtlpCall::official_mismatches.
//
// Answers: success without partial_success by default. AnswerGrpc() sets the gRPC status of the
// following calls (details, e.g. google.rpc.RetryInfo, go into grpc-status-details-bin);
// AnswerHttp() the HTTP status, headers and body; AnswerPartialSuccess() a success carrying
// partial_success on both transports. The spans of an export answered with an error are not in
// Spans(); those of a partial success are (all of them: the receiver keeps what it was sent).
// Threading: gRPC's and the HTTP server's threads record exports; tests read them from any
// thread. The destructor shuts both servers down.

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/server.h"
#include "grpcpp/support/status.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.grpc.pb.h"
#include "tests/support/received_spans.h"
#include "tests/support/test_http_server.h"

namespace meshtel::testing {

struct OtlpCall {
  bool grpc = false;                                // true: gRPC Export; false: HTTP POST
  std::string target;                               // HTTP: the request target ("/v1/traces")
  std::multimap<std::string, std::string> headers;  // HTTP headers (lower-case) or gRPC metadata
  std::string content_encoding;                     // HTTP Content-Encoding ("" or "gzip")
  size_t body_bytes = 0;                            // HTTP: the body as received (compressed)
  opentelemetry::proto::collector::trace::v1::ExportTraceServiceRequest request;
  std::string decode_error;  // gunzip or protobuf failure, or empty
  bool official_checked = false;
  std::vector<std::string> official_mismatches;
  bool accepted = false;  // answered with success (partial or not)
};

class OtlpReceiver {
 public:
  // `grpc_gzip` false: the gRPC server does not accept gzip (a gzip request fails UNIMPLEMENTED),
  // which shows a client really compressed.
  // `http_tls` set: the HTTP server speaks HTTPS only and http_url() is https:// (the gRPC server
  // stays plaintext).
  explicit OtlpReceiver(bool grpc_gzip = true,
                        const std::optional<TestTlsOptions>& http_tls = std::nullopt);
  ~OtlpReceiver();

  // "127.0.0.1:<port>" of the gRPC server, and "http://127.0.0.1:<port>/v1/traces" (https://
  // with TLS).
  std::string grpc_endpoint() const;
  std::string http_url() const;

  void AnswerGrpc(grpc::Status status);
  void AnswerHttp(int status, std::vector<std::pair<std::string, std::string>> headers = {},
                  std::string body = "");
  // Success with partial_success{rejected_spans, error_message} on both transports.
  void AnswerPartialSuccess(int64_t rejected_spans, std::string error_message);

  std::vector<OtlpCall> Calls() const;
  std::vector<ReceivedSpan> Spans() const;
  // Waits until at least `count` spans were accepted, at most `timeout`; true when they were.
  bool WaitForSpans(size_t count, absl::Duration timeout) const;

 private:
  class Service;
  TestHttpReply HandleHttp(const TestHttpRequest& request);

  std::unique_ptr<Service> service_;  // holds the state both transports share
  std::unique_ptr<grpc::Server> server_;
  int grpc_port_ = 0;
  std::unique_ptr<TestHttpServer> http_;
  bool http_tls_ = false;
};

}  // namespace meshtel::testing
