#include "exporters/common/grpc_call.h"

#include <string>

#include "google/rpc/status.pb.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "jaeger/api_v2/collector.pb.h"
#include "tests/support/jaeger_receiver.h"

namespace meshtel::exporters {
namespace {

using collector::SendVerdict;

std::string DetailsWithRetryDelay(int64_t seconds, int32_t nanos) {
  google::rpc::RetryInfo info;
  info.mutable_retry_delay()->set_seconds(seconds);
  info.mutable_retry_delay()->set_nanos(nanos);
  google::rpc::Status status;
  google::protobuf::Any* other = status.add_details();
  other->set_type_url("type.googleapis.com/google.rpc.DebugInfo");
  other->set_value("ignored");
  google::protobuf::Any* any = status.add_details();
  any->set_type_url(std::string(kRetryInfoTypeUrl));
  any->set_value(info.SerializeAsString());
  return status.SerializeAsString();
}

TEST(GrpcVerdictTest, TheTableOfTheSpec) {
  const auto verdict = [](grpc::StatusCode code, ResourceExhausted policy) {
    return GrpcVerdict(grpc::Status(code, "m"), policy).verdict;
  };
  for (ResourceExhausted policy :
       {ResourceExhausted::kRetryableWithRetryInfo, ResourceExhausted::kAlwaysRetryable}) {
    EXPECT_EQ(verdict(grpc::StatusCode::OK, policy), SendVerdict::kOk);
    for (grpc::StatusCode code : {grpc::StatusCode::CANCELLED, grpc::StatusCode::DEADLINE_EXCEEDED,
                                  grpc::StatusCode::ABORTED, grpc::StatusCode::OUT_OF_RANGE,
                                  grpc::StatusCode::UNAVAILABLE, grpc::StatusCode::DATA_LOSS}) {
      EXPECT_EQ(verdict(code, policy), SendVerdict::kRetryable) << GrpcCodeName(code);
    }
    for (grpc::StatusCode code :
         {grpc::StatusCode::UNKNOWN, grpc::StatusCode::INVALID_ARGUMENT,
          grpc::StatusCode::NOT_FOUND, grpc::StatusCode::ALREADY_EXISTS,
          grpc::StatusCode::PERMISSION_DENIED, grpc::StatusCode::UNAUTHENTICATED,
          grpc::StatusCode::FAILED_PRECONDITION, grpc::StatusCode::UNIMPLEMENTED,
          grpc::StatusCode::INTERNAL}) {
      EXPECT_EQ(verdict(code, policy), SendVerdict::kPermanent) << GrpcCodeName(code);
      // Refusals of the request itself are set aside whole; the rest may be a record's fault.
      const bool refused = code == grpc::StatusCode::PERMISSION_DENIED ||
                           code == grpc::StatusCode::UNAUTHENTICATED ||
                           code == grpc::StatusCode::UNIMPLEMENTED;
      EXPECT_EQ(GrpcVerdict(grpc::Status(code, "m"), policy).request_refused, refused)
          << GrpcCodeName(code);
    }
  }
  EXPECT_EQ(verdict(grpc::StatusCode::RESOURCE_EXHAUSTED, ResourceExhausted::kAlwaysRetryable),
            SendVerdict::kRetryable);
  EXPECT_EQ(
      verdict(grpc::StatusCode::RESOURCE_EXHAUSTED, ResourceExhausted::kRetryableWithRetryInfo),
      SendVerdict::kPermanent);
  const collector::SendResult with_info =
      GrpcVerdict(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, "slow down",
                               DetailsWithRetryDelay(2, 500'000'000)),
                  ResourceExhausted::kRetryableWithRetryInfo);
  EXPECT_EQ(with_info.verdict, SendVerdict::kRetryable);
  EXPECT_TRUE(with_info.throttled);
  EXPECT_EQ(with_info.retry_after, absl::Milliseconds(2500));
  EXPECT_EQ(with_info.detail, "gRPC RESOURCE_EXHAUSTED: slow down");
}

TEST(GrpcRetryDelayTest, OnlyFromARetryInfoDetail) {
  EXPECT_EQ(GrpcRetryDelay(grpc::Status(grpc::StatusCode::UNAVAILABLE, "x")), std::nullopt);
  EXPECT_EQ(GrpcRetryDelay(grpc::Status(grpc::StatusCode::UNAVAILABLE, "x", "not a status")),
            std::nullopt);
  EXPECT_EQ(
      GrpcRetryDelay(grpc::Status(grpc::StatusCode::UNAVAILABLE, "x", DetailsWithRetryDelay(4, 0))),
      absl::Seconds(4));
}

TEST(GrpcCodeNameTest, Names) {
  EXPECT_EQ(GrpcCodeName(grpc::StatusCode::OK), "OK");
  EXPECT_EQ(GrpcCodeName(grpc::StatusCode::UNAUTHENTICATED), "UNAUTHENTICATED");
  EXPECT_EQ(GrpcCodeName(static_cast<grpc::StatusCode>(42)), "CODE_42");
}

TEST(GrpcUnaryCallTest, SendsTheBytesAndTheMetadata) {
  testing::JaegerReceiver receiver;
  grpc::GenericStub stub(
      grpc::CreateChannel(receiver.endpoint(), grpc::InsecureChannelCredentials()));
  jaeger::api_v2::PostSpansRequest request;
  request.mutable_batch()->mutable_process()->set_service_name("web");
  GrpcCallOptions options;
  options.metadata = {{"x-tenant", "a"}};
  options.gzip = true;
  std::string response = "stale";
  const grpc::Status status = GrpcUnaryCall(stub, "/jaeger.api_v2.CollectorService/PostSpans",
                                            request.SerializeAsString(), options, &response);
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response, "");  // PostSpansResponse is empty
  const std::vector<testing::JaegerCall> calls = receiver.Calls();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].request.batch().process().service_name(), "web");
  EXPECT_EQ(calls[0].metadata.find("x-tenant")->second, "a");

  const grpc::Status unknown = GrpcUnaryCall(stub, "/jaeger.api_v2.CollectorService/Nope",
                                             request.SerializeAsString(), options, nullptr);
  EXPECT_EQ(unknown.error_code(), grpc::StatusCode::UNIMPLEMENTED);
}

}  // namespace
}  // namespace meshtel::exporters
