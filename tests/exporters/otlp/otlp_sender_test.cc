#include "exporters/otlp/otlp_sender.h"

#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "exporters/otlp/otlp_encoder.h"
#include "google/rpc/status.pb.h"
#include "gtest/gtest.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.grpc.pb.h"
#include "prometheus/registry.h"
#include "tests/support/otlp_receiver.h"
#include "tests/support/process.h"
#include "tests/support/span_samples.h"
#include "tests/support/test_certificates.h"

namespace meshtel::exporters {
namespace {

using collector::SendResult;
using collector::SendVerdict;
using testing::OtlpReceiver;
using testing::SampleSpan;
using testing::StoredSpan;

constexpr char kTrace[] = "4bf92f3577b34da6a3ce929d0e0e4736";
constexpr char kRoot[] = "00f067aa0ba902b7";
constexpr char kChild[] = "b7ad6b7169203331";

OtlpConfig GrpcConfig(const OtlpReceiver& receiver, OtlpCompression compression) {
  OtlpConfig config;
  config.protocol = OtlpProtocol::kGrpc;
  config.endpoint = receiver.grpc_endpoint();
  config.grpc_target = receiver.grpc_endpoint();
  config.compression = compression;
  config.headers = {{"x-scope-orgid", "tenant-a"}};
  return config;
}

OtlpConfig HttpConfig(const OtlpReceiver& receiver, OtlpCompression compression) {
  OtlpConfig config;
  config.protocol = OtlpProtocol::kHttpProtobuf;
  config.endpoint = receiver.http_url();
  absl::StatusOr<common::HttpUrl> url = common::ParseHttpUrl(receiver.http_url());
  EXPECT_TRUE(url.ok()) << url.status();
  config.http_url = *url;
  config.compression = compression;
  config.headers = {{"X-Scope-OrgID", "tenant-a"}, {"Authorization", "Bearer t0ken"}};
  return config;
}

collector::Payload PayloadFor(const OtlpConfig& config) {
  std::vector<collector::StoredRecord> records = {
      StoredSpan(SampleSpan(kTrace, kRoot, "", "web"), 1),
      StoredSpan(SampleSpan(kTrace, kChild, kRoot, "cart"), 2)};
  OtlpEncoder encoder(config);
  absl::StatusOr<collector::Payload> payload = encoder.Encode(records);
  EXPECT_TRUE(payload.ok()) << payload.status();
  return *payload;
}

// A status detail asking the client to wait `seconds`.
std::string RetryInfoDetails(int64_t seconds) {
  google::rpc::RetryInfo info;
  info.mutable_retry_delay()->set_seconds(seconds);
  google::rpc::Status status;
  status.set_code(14);
  google::protobuf::Any* any = status.add_details();
  any->set_type_url("type.googleapis.com/google.rpc.RetryInfo");
  any->set_value(info.SerializeAsString());
  return status.SerializeAsString();
}

void ExpectTheTraceArrived(const OtlpReceiver& receiver) {
  const std::vector<testing::ReceivedSpan> spans = receiver.Spans();
  ASSERT_EQ(spans.size(), 2u);
  EXPECT_EQ(spans[0].trace_id, kTrace);
  EXPECT_EQ(spans[0].span_id, kRoot);
  EXPECT_EQ(spans[0].parent_span_id, "");
  EXPECT_EQ(spans[0].service, "web");
  EXPECT_EQ(spans[0].kind, "server");
  EXPECT_EQ(spans[0].scope_name, "meshtel-proxy");
  EXPECT_EQ(spans[1].span_id, kChild);
  EXPECT_EQ(spans[1].parent_span_id, kRoot);
  EXPECT_EQ(spans[1].service, "cart");
  EXPECT_EQ(std::get<int64_t>(spans[1].attributes.at("http.response.status_code")), 200);
  EXPECT_EQ(std::get<std::string>(spans[1].resource.at("k8s.namespace.name")), "shop");
  for (const testing::OtlpCall& call : receiver.Calls()) {
    EXPECT_EQ(call.decode_error, "");
    if (call.official_checked) {
      EXPECT_TRUE(call.official_mismatches.empty())
          << ::testing::PrintToString(call.official_mismatches);
    } else {
      std::printf("official OTLP schema unavailable: not compared\n");
    }
  }
}

TEST(OtlpSenderTest, TheMethodPathIsTheGeneratedServices) {
  EXPECT_EQ(std::string(kOtlpExportMethod),
            std::string("/") +
                opentelemetry::proto::collector::trace::v1::TraceService::service_full_name() +
                "/Export");
}

TEST(OtlpSenderTest, GrpcExportArrivesWithItsMetadata) {
  OtlpReceiver receiver;
  const OtlpConfig config = GrpcConfig(receiver, OtlpCompression::kNone);
  OtlpSender sender(config, nullptr);
  const SendResult result = sender.Send(PayloadFor(config));
  EXPECT_EQ(result.verdict, SendVerdict::kOk) << result.detail;
  EXPECT_EQ(result.detail, "gRPC OK");
  ExpectTheTraceArrived(receiver);
  const std::vector<testing::OtlpCall> calls = receiver.Calls();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_TRUE(calls[0].grpc);
  const auto tenant = calls[0].headers.find("x-scope-orgid");
  ASSERT_NE(tenant, calls[0].headers.end());
  EXPECT_EQ(tenant->second, "tenant-a");
}

TEST(OtlpSenderTest, GrpcGzipIsDecompressedByTheReceiver) {
  OtlpReceiver receiver;
  const OtlpConfig config = GrpcConfig(receiver, OtlpCompression::kGzip);
  OtlpSender sender(config, nullptr);
  const SendResult result = sender.Send(PayloadFor(config));
  EXPECT_EQ(result.verdict, SendVerdict::kOk) << result.detail;
  ExpectTheTraceArrived(receiver);

  // A server that does not take gzip refuses it: the request really was compressed.
  OtlpReceiver no_gzip(/*grpc_gzip=*/false);
  const OtlpConfig refused = GrpcConfig(no_gzip, OtlpCompression::kGzip);
  OtlpSender gzip_sender(refused, nullptr);
  const SendResult unimplemented = gzip_sender.Send(PayloadFor(refused));
  EXPECT_EQ(unimplemented.verdict, SendVerdict::kPermanent) << unimplemented.detail;
  EXPECT_TRUE(unimplemented.detail.starts_with("gRPC UNIMPLEMENTED")) << unimplemented.detail;
  OtlpSender plain_sender(GrpcConfig(no_gzip, OtlpCompression::kNone), nullptr);
  EXPECT_EQ(plain_sender.Send(PayloadFor(refused)).verdict, SendVerdict::kOk);
}

TEST(OtlpSenderTest, GrpcRetryableCodes) {
  OtlpReceiver receiver;
  const OtlpConfig config = GrpcConfig(receiver, OtlpCompression::kNone);
  OtlpSender sender(config, nullptr);
  receiver.AnswerGrpc(grpc::Status(grpc::StatusCode::UNAVAILABLE, "overloaded"));
  SendResult result = sender.Send(PayloadFor(config));
  EXPECT_EQ(result.verdict, SendVerdict::kRetryable);
  EXPECT_FALSE(result.retry_after.has_value());
  EXPECT_EQ(result.detail, "gRPC UNAVAILABLE: overloaded");

  receiver.AnswerGrpc(
      grpc::Status(grpc::StatusCode::UNAVAILABLE, "overloaded", RetryInfoDetails(7)));
  result = sender.Send(PayloadFor(config));
  EXPECT_EQ(result.verdict, SendVerdict::kRetryable);
  EXPECT_EQ(result.retry_after, absl::Seconds(7));
  EXPECT_TRUE(receiver.Spans().empty());
}

TEST(OtlpSenderTest, GrpcResourceExhaustedIsRetryableOnlyWithRetryInfo) {
  OtlpReceiver receiver;
  const OtlpConfig config = GrpcConfig(receiver, OtlpCompression::kNone);
  OtlpSender sender(config, nullptr);
  receiver.AnswerGrpc(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, "too big"));
  EXPECT_EQ(sender.Send(PayloadFor(config)).verdict, SendVerdict::kPermanent);
  receiver.AnswerGrpc(
      grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, "slow down", RetryInfoDetails(3)));
  const SendResult result = sender.Send(PayloadFor(config));
  EXPECT_EQ(result.verdict, SendVerdict::kRetryable);
  EXPECT_TRUE(result.throttled);
  EXPECT_EQ(result.retry_after, absl::Seconds(3));
}

TEST(OtlpSenderTest, GrpcInvalidArgumentIsPermanent) {
  OtlpReceiver receiver;
  const OtlpConfig config = GrpcConfig(receiver, OtlpCompression::kNone);
  OtlpSender sender(config, nullptr);
  receiver.AnswerGrpc(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "bad trace id"));
  const SendResult result = sender.Send(PayloadFor(config));
  EXPECT_EQ(result.verdict, SendVerdict::kPermanent);
  EXPECT_EQ(result.detail, "gRPC INVALID_ARGUMENT: bad trace id");
}

TEST(OtlpSenderTest, PartialSuccessIsOkAndCountedOnBothTransports) {
  prometheus::Registry registry;
  prometheus::Counter& rejected = OtlpRejectedSpansCounter(registry, "tempo");
  OtlpReceiver receiver;
  receiver.AnswerPartialSuccess(1, "span too old");
  for (const OtlpConfig& config : {GrpcConfig(receiver, OtlpCompression::kNone),
                                   HttpConfig(receiver, OtlpCompression::kNone)}) {
    OtlpSender sender(config, &rejected);
    const SendResult result = sender.Send(PayloadFor(config));
    EXPECT_EQ(result.verdict, SendVerdict::kOk) << result.detail;
    const std::string answer = config.protocol == OtlpProtocol::kGrpc ? "gRPC OK" : "HTTP 200";
    EXPECT_EQ(result.detail, answer + " (partial success: 1 spans rejected: span too old)");
  }
  EXPECT_EQ(rejected.Value(), 2);
  EXPECT_EQ(receiver.Calls().size(), 2u);  // never retried
}

TEST(OtlpSenderTest, HttpPostArrivesWithItsHeaders) {
  OtlpReceiver receiver;
  const OtlpConfig config = HttpConfig(receiver, OtlpCompression::kNone);
  OtlpSender sender(config, nullptr);
  const SendResult result = sender.Send(PayloadFor(config));
  EXPECT_EQ(result.verdict, SendVerdict::kOk) << result.detail;
  EXPECT_EQ(result.detail, "HTTP 200");
  ExpectTheTraceArrived(receiver);
  const std::vector<testing::OtlpCall> calls = receiver.Calls();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_FALSE(calls[0].grpc);
  EXPECT_EQ(calls[0].target, "/v1/traces");
  EXPECT_EQ(calls[0].content_encoding, "");
  EXPECT_EQ(calls[0].headers.find("x-scope-orgid")->second, "tenant-a");
  EXPECT_EQ(calls[0].headers.find("authorization")->second, "Bearer t0ken");
  EXPECT_EQ(calls[0].headers.find("content-type")->second, "application/x-protobuf");
}

TEST(OtlpSenderTest, HttpsPostArrivesOverTls) {
  const testing::TestCertificates certificates =
      testing::MakeTestCertificates(testing::MakeTempDir("meshtel-otlp-sender-tls"));
  if (!certificates.unavailable.empty()) GTEST_SKIP() << certificates.unavailable;
  OtlpReceiver receiver(/*grpc_gzip=*/true,
                        testing::TestTlsOptions{.cert_pem = certificates.server_cert_pem,
                                                .key_pem = certificates.server_key_pem});
  OtlpConfig config = HttpConfig(receiver, OtlpCompression::kNone);
  ASSERT_TRUE(config.http_url.https);
  config.tls.enabled = true;
  config.tls.ca_pem = certificates.ca_pem;
  config.tls.server_name = testing::kTestServerName;
  OtlpSender sender(config, nullptr);
  ASSERT_TRUE(sender.tls_status().ok()) << sender.tls_status();
  const SendResult result = sender.Send(PayloadFor(config));
  EXPECT_EQ(result.verdict, SendVerdict::kOk) << result.detail;
  ExpectTheTraceArrived(receiver);

  // Without the test CA the receiver is not trusted: retryable, nothing arrives.
  OtlpReceiver other(/*grpc_gzip=*/true,
                     testing::TestTlsOptions{.cert_pem = certificates.server_cert_pem,
                                             .key_pem = certificates.server_key_pem});
  OtlpConfig untrusted = HttpConfig(other, OtlpCompression::kNone);
  untrusted.tls.enabled = true;
  untrusted.tls.server_name = testing::kTestServerName;
  OtlpSender untrusted_sender(untrusted, nullptr);
  const SendResult refused = untrusted_sender.Send(PayloadFor(untrusted));
  EXPECT_EQ(refused.verdict, SendVerdict::kRetryable);
  EXPECT_NE(refused.detail.find("TLS verification"), std::string::npos) << refused.detail;
  EXPECT_TRUE(other.Calls().empty());
}

TEST(OtlpSenderTest, HttpGzipIsDecompressedByTheReceiver) {
  OtlpReceiver receiver;
  const OtlpConfig config = HttpConfig(receiver, OtlpCompression::kGzip);
  OtlpSender sender(config, nullptr);
  const collector::Payload payload = PayloadFor(config);
  const SendResult result = sender.Send(payload);
  EXPECT_EQ(result.verdict, SendVerdict::kOk) << result.detail;
  ExpectTheTraceArrived(receiver);
  const std::vector<testing::OtlpCall> calls = receiver.Calls();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].content_encoding, "gzip");
  EXPECT_EQ(calls[0].body_bytes, payload.body.size());
  EXPECT_LT(calls[0].body_bytes, calls[0].request.ByteSizeLong());
}

TEST(OtlpSenderTest, HttpRetryableAnswers) {
  OtlpReceiver receiver;
  const OtlpConfig config = HttpConfig(receiver, OtlpCompression::kNone);
  OtlpSender sender(config, nullptr);
  receiver.AnswerHttp(503, {{"Retry-After", "7"}}, "busy");
  SendResult result = sender.Send(PayloadFor(config));
  EXPECT_EQ(result.verdict, SendVerdict::kRetryable);
  EXPECT_FALSE(result.throttled);
  EXPECT_EQ(result.retry_after, absl::Seconds(7));
  EXPECT_EQ(result.detail, "HTTP 503: busy");

  receiver.AnswerHttp(429, {{"Retry-After", "2"}});
  result = sender.Send(PayloadFor(config));
  EXPECT_EQ(result.verdict, SendVerdict::kRetryable);
  EXPECT_TRUE(result.throttled);
  EXPECT_EQ(result.retry_after, absl::Seconds(2));
  EXPECT_TRUE(receiver.Spans().empty());
}

TEST(OtlpSenderTest, HttpBadRequestIsPermanentWithTheStatusMessage) {
  OtlpReceiver receiver;
  const OtlpConfig config = HttpConfig(receiver, OtlpCompression::kNone);
  OtlpSender sender(config, nullptr);
  google::rpc::Status status;
  status.set_code(3);
  status.set_message("invalid span id");
  receiver.AnswerHttp(400, {{"Content-Type", "application/x-protobuf"}},
                      status.SerializeAsString());
  const SendResult result = sender.Send(PayloadFor(config));
  EXPECT_EQ(result.verdict, SendVerdict::kPermanent);
  EXPECT_EQ(result.detail, "HTTP 400: invalid span id");
}

TEST(OtlpSenderTest, NobodyListeningIsRetryable) {
  OtlpConfig grpc_config;
  OtlpConfig http_config;
  {
    OtlpReceiver gone;
    grpc_config = GrpcConfig(gone, OtlpCompression::kNone);
    http_config = HttpConfig(gone, OtlpCompression::kNone);
  }
  grpc_config.timeout = absl::Seconds(5);
  http_config.timeout = absl::Seconds(5);
  OtlpSender grpc_sender(grpc_config, nullptr);
  EXPECT_EQ(grpc_sender.Send(PayloadFor(grpc_config)).verdict, SendVerdict::kRetryable);
  OtlpSender http_sender(http_config, nullptr);
  EXPECT_EQ(http_sender.Send(PayloadFor(http_config)).verdict, SendVerdict::kRetryable);
}

TEST(OtlpHttpVerdictTest, OnlyTheRetryableStatusesOfTheSpec) {
  const absl::Time now = absl::Now();
  const auto verdict = [&](int status) {
    common::HttpResponse response;
    response.status = status;
    return OtlpHttpVerdict(response, now).verdict;
  };
  for (int status : {200, 202, 204}) EXPECT_EQ(verdict(status), SendVerdict::kOk) << status;
  for (int status : {429, 502, 503, 504}) {
    EXPECT_EQ(verdict(status), SendVerdict::kRetryable) << status;
  }
  for (int status : {400, 401, 403, 404, 408, 413, 415, 500, 501, 505}) {
    EXPECT_EQ(verdict(status), SendVerdict::kPermanent) << status;
  }
  // Credentials, permissions, path or method: the request is refused, not a record in it.
  for (int status : {400, 401, 403, 404, 405, 408, 413, 415, 500, 501, 505}) {
    common::HttpResponse response;
    response.status = status;
    const bool refused = status == 401 || status == 403 || status == 404 || status == 405;
    EXPECT_EQ(OtlpHttpVerdict(response, now).request_refused, refused) << status;
  }
}

TEST(ApplyPartialSuccessTest, AWarningWithoutRejectedSpansCountsNothing) {
  prometheus::Registry registry;
  prometheus::Counter& rejected = OtlpRejectedSpansCounter(registry, "tempo");
  opentelemetry::proto::collector::trace::v1::ExportTraceServiceResponse response;
  response.mutable_partial_success()->set_error_message("deprecated attribute");
  collector::SendResult result;
  result.detail = "gRPC OK";
  ApplyPartialSuccess(response.SerializeAsString(), &rejected, result);
  EXPECT_EQ(rejected.Value(), 0);
  EXPECT_EQ(result.detail, "gRPC OK (partial success: 0 spans rejected: deprecated attribute)");
  result.detail = "gRPC OK";
  ApplyPartialSuccess("", &rejected, result);
  EXPECT_EQ(result.detail, "gRPC OK");
}

}  // namespace
}  // namespace meshtel::exporters
