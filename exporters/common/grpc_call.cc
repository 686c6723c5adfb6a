#include "exporters/common/grpc_call.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <future>

#include "fmt/format.h"
#include "google/rpc/status.pb.h"
#include "grpcpp/client_context.h"
#include "grpcpp/support/byte_buffer.h"

namespace meshtel::exporters {

grpc::Status GrpcUnaryCall(grpc::GenericStub& stub, const std::string& method,
                           std::string_view request, const GrpcCallOptions& options,
                           std::string* response) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       absl::ToChronoNanoseconds(options.timeout));
  for (const auto& [key, value] : options.metadata) context.AddMetadata(key, value);
  if (options.gzip) context.set_compression_algorithm(GRPC_COMPRESS_GZIP);
  grpc::Slice slice(request.data(), request.size());
  const grpc::ByteBuffer request_buffer(&slice, 1);
  grpc::ByteBuffer response_buffer;
  std::promise<grpc::Status> done;
  stub.UnaryCall(&context, method, grpc::StubOptions(), &request_buffer, &response_buffer,
                 [&done](grpc::Status status) { done.set_value(std::move(status)); });
  grpc::Status status = done.get_future().get();
  if (status.ok() && response != nullptr) {
    response->clear();
    std::vector<grpc::Slice> slices;
    if (response_buffer.Valid() && response_buffer.Dump(&slices).ok()) {
      for (const grpc::Slice& part : slices) {
        response->append(reinterpret_cast<const char*>(part.begin()), part.size());
      }
    }
  }
  return status;
}

std::optional<absl::Duration> GrpcRetryDelay(const grpc::Status& status) {
  if (status.error_details().empty()) return std::nullopt;
  google::rpc::Status details;
  if (!details.ParseFromString(status.error_details())) return std::nullopt;
  for (const google::protobuf::Any& any : details.details()) {
    if (any.type_url() != kRetryInfoTypeUrl) continue;
    google::rpc::RetryInfo info;
    if (!info.ParseFromString(any.value())) return std::nullopt;
    const absl::Duration delay =
        absl::Seconds(info.retry_delay().seconds()) + absl::Nanoseconds(info.retry_delay().nanos());
    return std::max(delay, absl::ZeroDuration());
  }
  return std::nullopt;
}

std::string GrpcCodeName(grpc::StatusCode code) {
  static constexpr std::array<const char*, 17> kNames = {"OK",
                                                         "CANCELLED",
                                                         "UNKNOWN",
                                                         "INVALID_ARGUMENT",
                                                         "DEADLINE_EXCEEDED",
                                                         "NOT_FOUND",
                                                         "ALREADY_EXISTS",
                                                         "PERMISSION_DENIED",
                                                         "RESOURCE_EXHAUSTED",
                                                         "FAILED_PRECONDITION",
                                                         "ABORTED",
                                                         "OUT_OF_RANGE",
                                                         "UNIMPLEMENTED",
                                                         "INTERNAL",
                                                         "UNAVAILABLE",
                                                         "DATA_LOSS",
                                                         "UNAUTHENTICATED"};
  const int index = static_cast<int>(code);
  if (index >= 0 && index < static_cast<int>(kNames.size())) return kNames[index];
  return fmt::format("CODE_{}", index);
}

collector::SendResult GrpcVerdict(const grpc::Status& status, ResourceExhausted policy) {
  collector::SendResult result;
  result.detail = fmt::format("gRPC {}", GrpcCodeName(status.error_code()));
  if (!status.error_message().empty()) {
    result.detail += ": " + status.error_message().substr(0, 200);
  }
  const std::optional<absl::Duration> delay = GrpcRetryDelay(status);
  switch (status.error_code()) {
    case grpc::StatusCode::OK:
      result.verdict = collector::SendVerdict::kOk;
      break;
    case grpc::StatusCode::CANCELLED:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
    case grpc::StatusCode::ABORTED:
    case grpc::StatusCode::OUT_OF_RANGE:
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DATA_LOSS:
      result.verdict = collector::SendVerdict::kRetryable;
      result.retry_after = delay;
      break;
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      if (delay.has_value() || policy == ResourceExhausted::kAlwaysRetryable) {
        result.verdict = collector::SendVerdict::kRetryable;
        result.throttled = true;
        result.retry_after = delay;
      } else {
        // Over the server's size limit, not overload: sending it again would fail again.
        result.verdict = collector::SendVerdict::kPermanent;
      }
      break;
    case grpc::StatusCode::UNAUTHENTICATED:
    case grpc::StatusCode::PERMISSION_DENIED:
    case grpc::StatusCode::UNIMPLEMENTED:
      // Credentials, permissions or the service refused, not a record: set aside whole.
      result.verdict = collector::SendVerdict::kPermanent;
      result.request_refused = true;
      break;
    default:
      result.verdict = collector::SendVerdict::kPermanent;
      break;
  }
  return result;
}

}  // namespace meshtel::exporters
