#include "collector/ingest/grpc_listener.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "opentelemetry/proto/collector/logs/v1/logs_service.grpc.pb.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.grpc.pb.h"

namespace meshtel::collector {
namespace {

namespace otlp = opentelemetry::proto::collector::trace::v1;
namespace otlp_logs = opentelemetry::proto::collector::logs::v1;

// Answers every Export with OK.
class AcceptingTraceService : public otlp::TraceService::Service {
 public:
  grpc::Status Export(grpc::ServerContext*, const otlp::ExportTraceServiceRequest*,
                      otlp::ExportTraceServiceResponse*) override {
    return grpc::Status::OK;
  }
};

grpc::Status Export(uint16_t port, size_t attribute_bytes) {
  auto channel =
      grpc::CreateChannel("127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials());
  auto stub = otlp::TraceService::NewStub(channel);
  otlp::ExportTraceServiceRequest request;
  request.add_resource_spans()->mutable_schema_url()->assign(attribute_bytes, 'x');
  otlp::ExportTraceServiceResponse response;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  return stub->Export(&context, request, &response);
}

TEST(GrpcListenerTest, ServesOnTheChosenPortUpToTheMessageLimit) {
  AcceptingTraceService service;
  absl::StatusOr<GrpcListener> listener = StartGrpcListener(
      common::HostPort{"127.0.0.1", 0}, service, 4096, "ingest.test.listen", "test receiver");
  ASSERT_TRUE(listener.ok()) << listener.status();
  ASSERT_NE(listener->port, 0);
  EXPECT_TRUE(Export(listener->port, 100).ok());
  const grpc::Status too_large = Export(listener->port, 8192);
  EXPECT_EQ(too_large.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
      << too_large.error_message();
  listener->server->Shutdown();
}

// Answers every Export with OK.
class AcceptingLogsService : public otlp_logs::LogsService::Service {
 public:
  grpc::Status Export(grpc::ServerContext*, const otlp_logs::ExportLogsServiceRequest*,
                      otlp_logs::ExportLogsServiceResponse*) override {
    return grpc::Status::OK;
  }
};

TEST(GrpcListenerTest, ServesSeveralServicesOnOnePort) {
  AcceptingTraceService traces;
  AcceptingLogsService logs;
  absl::StatusOr<GrpcListener> listener =
      StartGrpcListener(common::HostPort{"127.0.0.1", 0}, {&traces, &logs}, 4096,
                        "ingest.test.listen", "test receiver");
  ASSERT_TRUE(listener.ok()) << listener.status();
  EXPECT_TRUE(Export(listener->port, 100).ok());
  auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(listener->port),
                                     grpc::InsecureChannelCredentials());
  auto stub = otlp_logs::LogsService::NewStub(channel);
  otlp_logs::ExportLogsServiceRequest request;
  otlp_logs::ExportLogsServiceResponse response;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  const grpc::Status status = stub->Export(&context, request, &response);
  EXPECT_TRUE(status.ok()) << status.error_message();
  listener->server->Shutdown();
}

TEST(GrpcListenerTest, APortTakenByAnotherSocketIsAnErrorNamingTheKey) {
  const int taken = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(taken, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(taken, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  ASSERT_EQ(listen(taken, 1), 0);
  socklen_t length = sizeof(address);
  ASSERT_EQ(getsockname(taken, reinterpret_cast<sockaddr*>(&address), &length), 0);
  const uint16_t port = ntohs(address.sin_port);

  AcceptingTraceService service;
  absl::StatusOr<GrpcListener> listener = StartGrpcListener(
      common::HostPort{"127.0.0.1", port}, service, 4096, "ingest.test.listen", "test receiver");
  close(taken);
  ASSERT_FALSE(listener.ok());
  EXPECT_EQ(listener.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(listener.status().message(),
            "ingest.test.listen: cannot listen on 127.0.0.1:" + std::to_string(port));
}

TEST(GrpcListenerTest, ASecondListenerOnTheSamePortIsAnError) {
  AcceptingTraceService service;
  absl::StatusOr<GrpcListener> first = StartGrpcListener(
      common::HostPort{"127.0.0.1", 0}, service, 4096, "ingest.test.listen", "test receiver");
  ASSERT_TRUE(first.ok()) << first.status();
  AcceptingTraceService other;
  absl::StatusOr<GrpcListener> second =
      StartGrpcListener(common::HostPort{"127.0.0.1", first->port}, other, 4096,
                        "ingest.other.listen", "other receiver");
  EXPECT_FALSE(second.ok()) << "a second server bound port " << first->port;
  if (second.ok()) second->server->Shutdown();
  first->server->Shutdown();
}

}  // namespace
}  // namespace meshtel::collector
