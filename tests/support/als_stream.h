#pragma once
// Test support: a client stream of Envoy's gRPC Access Log Service
// (/envoy.service.accesslog.v3.AccessLogService/StreamAccessLogs, client streaming) to a
// collector on 127.0.0.1, sending messages as the bytes a test serialized (with the official
// schema or the project's own), so the test decides what goes on the wire.
//
// Threading: one test thread uses a stream. Errors: Write() is false once the stream broke;
// Finish() ends it and returns how the collector ended it.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "grpcpp/grpcpp.h"
#include "grpcpp/support/sync_stream.h"

namespace meshtel::testing {

class AlsStream {
 public:
  // Opens the stream; with `deadline`, the whole stream must end within it.
  explicit AlsStream(uint16_t port, std::optional<std::chrono::seconds> deadline = std::nullopt)
      : channel_(grpc::CreateChannel("127.0.0.1:" + std::to_string(port),
                                     grpc::InsecureChannelCredentials())),
        method_(kMethod, grpc::internal::RpcMethod::CLIENT_STREAMING) {
    if (deadline) context_.set_deadline(std::chrono::system_clock::now() + *deadline);
    writer_.reset(grpc::internal::ClientWriterFactory<grpc::ByteBuffer>::Create(
        channel_.get(), method_, &context_, &response_));
  }

  bool Write(const std::string& bytes) {
    grpc::Slice slice(bytes);
    grpc::ByteBuffer buffer(&slice, 1);
    return writer_->Write(buffer);
  }

  grpc::Status Finish() {
    writer_->WritesDone();
    return writer_->Finish();
  }

 private:
  static constexpr char kMethod[] = "/envoy.service.accesslog.v3.AccessLogService/StreamAccessLogs";

  std::shared_ptr<grpc::Channel> channel_;
  grpc::internal::RpcMethod method_;
  grpc::ClientContext context_;
  grpc::ByteBuffer response_;
  std::unique_ptr<grpc::ClientWriter<grpc::ByteBuffer>> writer_;
};

}  // namespace meshtel::testing
