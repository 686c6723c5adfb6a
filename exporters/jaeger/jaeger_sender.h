#pragma once
// JaegerSender: posts a Jaeger payload (jaeger_encoder.h: one PostSpansRequest per process) to
// `/jaeger.api_v2.CollectorService/PostSpans` over gRPC, one unary call per request, in order,
// each with the configured timeout as its deadline and the configured headers as metadata.
// HTTP/2, plaintext or TLS as the config's `tls` block says (exporters/common/grpc_channel.h).
//
// Verdicts: GrpcVerdict() with RESOURCE_EXHAUSTED always retryable (wire-facts §3.1):
//   every request OK                     kOk
//   a retryable status (UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, ...)
//                                        kRetryable; the requests already accepted are not sent
//                                        again when the same payload comes back (below)
//   a permanent status (INVALID_ARGUMENT, ...)
//                                        kPermanent, partly_stored when an earlier request of
//                                        the payload was accepted (Jaeger stored its spans)
// Delivery is at least once: a request whose answer was lost (a timeout after Jaeger stored it),
// or a payload resent after a collector restart, stores its spans twice; Jaeger shows such a
// span once per copy. Within one process the sender remembers how many requests of a payload
// that failed retryably were accepted, and skips them when the engine retries that payload.
//
// Threading: one thread at a time (the exporter's delivery thread). Ownership: owns its channel.

#include <memory>
#include <string>

#include "collector/delivery/exporter.h"
#include "exporters/common/grpc_call.h"
#include "exporters/jaeger/jaeger_exporter.h"
#include "grpcpp/channel.h"
#include "grpcpp/generic/generic_stub.h"

namespace meshtel::exporters {

class JaegerSender : public collector::Sender {
 public:
  explicit JaegerSender(const JaegerConfig& config);

  // collector::Sender
  collector::SendResult Send(const collector::Payload& payload) override;

 private:
  GrpcCallOptions options_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<grpc::GenericStub> stub_;
  // The last payload that failed retryably, and how many of its requests were accepted.
  std::string unfinished_body_;
  size_t unfinished_accepted_ = 0;
};

}  // namespace meshtel::exporters
