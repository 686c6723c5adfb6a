#include "exporters/jaeger/jaeger_sender.h"

#include <utility>
#include <vector>

#include "exporters/common/grpc_channel.h"
#include "exporters/jaeger/jaeger_encoder.h"
#include "fmt/format.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "spdlog/spdlog.h"

namespace meshtel::exporters {

JaegerSender::JaegerSender(const JaegerConfig& config)
    : channel_(CreateExporterChannel(config.endpoint, config.tls)),
      stub_(std::make_unique<grpc::GenericStub>(channel_)) {
  options_.timeout = config.timeout;
  options_.metadata = config.headers;
}

collector::SendResult JaegerSender::Send(const collector::Payload& payload) {
  absl::StatusOr<std::vector<std::string_view>> requests = SplitJaegerPayload(payload.body);
  if (!requests.ok()) {
    collector::SendResult result;
    result.verdict = collector::SendVerdict::kPermanent;
    result.detail = std::string(requests.status().message());
    return result;
  }
  size_t accepted = 0;
  if (!unfinished_body_.empty() && unfinished_body_ == payload.body) {
    accepted = unfinished_accepted_;
  }
  unfinished_body_.clear();
  unfinished_accepted_ = 0;
  const std::string method(kJaegerPostSpansMethod);
  for (size_t i = accepted; i < requests->size(); ++i) {
    const grpc::Status status =
        GrpcUnaryCall(*stub_, method, (*requests)[i], options_, /*response=*/nullptr);
    if (status.ok()) {
      ++accepted;
      continue;
    }
    collector::SendResult result = GrpcVerdict(status, ResourceExhausted::kAlwaysRetryable);
    if (requests->size() > 1) {
      result.detail += fmt::format(" (request {} of {})", i + 1, requests->size());
    }
    if (result.verdict == collector::SendVerdict::kRetryable) {
      unfinished_body_ = payload.body;
      unfinished_accepted_ = accepted;
    } else if (accepted > 0) {
      result.partly_stored = true;
    }
    spdlog::debug("jaeger PostSpans of {} spans failed: {}", payload.entries, result.detail);
    return result;
  }
  collector::SendResult result;
  result.detail = fmt::format("gRPC OK ({} requests)", requests->size());
  return result;
}

}  // namespace meshtel::exporters
