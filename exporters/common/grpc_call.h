#pragma once
// gRPC for the trace exporters (Jaeger, OTLP): one unary call with pre-serialized bytes, and the
// verdict for its status (wire-facts §0.1, §2.3, §3.1).
//
// GrpcUnaryCall() sends bytes an encoder already serialized (a GenericStub call: nothing is
// parsed or serialized again) and waits for the answer, at most `timeout` (the call's gRPC
// deadline). GrpcVerdict() classifies the status, once for every gRPC exporter:
//   OK                                              kOk
//   CANCELLED, DEADLINE_EXCEEDED, ABORTED, OUT_OF_RANGE, UNAVAILABLE, DATA_LOSS
//                                                   kRetryable (retry_after from RetryInfo)
//   RESOURCE_EXHAUSTED                              kRetryable + throttled when the status carries
//                                                   google.rpc.RetryInfo (OTLP), or always with
//                                                   kAlwaysRetryable (Jaeger, wire-facts §3.1);
//                                                   otherwise kPermanent
//   UNAUTHENTICATED, PERMISSION_DENIED, UNIMPLEMENTED
//                                                   kPermanent + request_refused (the request
//                                                   itself, not a record: set aside whole)
//   every other code                                kPermanent
// detail = "gRPC <CODE>: <message>".
//
// Threading: GrpcUnaryCall() blocks its caller; the stub may be shared (gRPC stubs are
// thread-safe). The rest are pure functions.

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "collector/delivery/exporter.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/support/status.h"

namespace meshtel::exporters {

// "type.googleapis.com/google.rpc.RetryInfo": the Any type of a retry delay in status details.
inline constexpr std::string_view kRetryInfoTypeUrl = "type.googleapis.com/google.rpc.RetryInfo";

struct GrpcCallOptions {
  absl::Duration timeout = absl::Seconds(10);
  // Custom metadata, lower-case keys.
  std::vector<std::pair<std::string, std::string>> metadata;
  // Compress the request with gzip (grpc-encoding: gzip).
  bool gzip = false;
};

// Calls `method` ("/package.Service/Method") with `request` (a serialized message) and stores
// the serialized answer in `response` when the status is OK.
grpc::Status GrpcUnaryCall(grpc::GenericStub& stub, const std::string& method,
                           std::string_view request, const GrpcCallOptions& options,
                           std::string* response);

// The delay of the google.rpc.RetryInfo in `status`'s details (grpc-status-details-bin), or
// nullopt when there is none.
std::optional<absl::Duration> GrpcRetryDelay(const grpc::Status& status);

// The canonical name of a code ("UNAVAILABLE"), "CODE_<n>" for an unknown one.
std::string GrpcCodeName(grpc::StatusCode code);

enum class ResourceExhausted {
  kRetryableWithRetryInfo,  // OTLP (wire-facts §2.3)
  kAlwaysRetryable,         // Jaeger (wire-facts §3.1)
};

collector::SendResult GrpcVerdict(const grpc::Status& status, ResourceExhausted policy);

}  // namespace meshtel::exporters
