#pragma once
// Test support: a Jaeger api_v2 collector on 127.0.0.1 (the project's generated
// jaeger.api_v2.CollectorService, gRPC) that keeps every PostSpans request it is sent and the
// spans in it, decoded into ReceivedSpan (received_spans.h). Each request is also checked
// against the official Jaeger schema when ../shared is present (re-serialized from the project's
// decode, which keeps unknown fields): differences land in JaegerCall::official_mismatches.
//
// Answers: OK by default; Answer() sets the status of the following calls (details, e.g. a
// google.rpc.RetryInfo, go into grpc-status-details-bin). A call answered with an error still
// counts as received (Calls()) but its spans are not in Spans().
// Threading: gRPC's threads record calls; tests read them from any thread. The destructor shuts
// the server down.

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/server.h"
#include "grpcpp/support/status.h"
#include "jaeger/api_v2/collector.grpc.pb.h"
#include "tests/support/received_spans.h"

namespace meshtel::testing {

struct JaegerCall {
  std::multimap<std::string, std::string> metadata;  // the client's custom metadata
  jaeger::api_v2::PostSpansRequest request;          // decoded with the project's subset
  bool official_checked = false;
  std::vector<std::string> official_mismatches;
  grpc::StatusCode answered = grpc::StatusCode::OK;
};

class JaegerReceiver {
 public:
  JaegerReceiver();
  // Listens with `credentials` (e.g. grpc::SslServerCredentials for TLS tests).
  explicit JaegerReceiver(std::shared_ptr<grpc::ServerCredentials> credentials);
  ~JaegerReceiver();

  // "127.0.0.1:<port>", the exporter's endpoint.
  std::string endpoint() const;
  uint16_t port() const { return port_; }

  // Accepts the next `ok_first` calls, then answers the following ones with `status` (OK:
  // accept and keep the spans).
  void Answer(grpc::Status status, size_t ok_first = 0);

  std::vector<JaegerCall> Calls() const;
  // The spans of every accepted call, in arrival order.
  std::vector<ReceivedSpan> Spans() const;
  // Waits until at least `count` spans were accepted, at most `timeout`; true when they were.
  bool WaitForSpans(size_t count, absl::Duration timeout) const;

 private:
  class Service;
  std::unique_ptr<Service> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

}  // namespace meshtel::testing
