#include "exporters/loki/loki_sender.h"

#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/support/loki_receiver.h"
#include "tests/support/process.h"

namespace meshtel::exporters {
namespace {

using collector::SendResult;
using collector::SendVerdict;
using meshtel::testing::LokiReceiver;

absl::Time At(const std::string& rfc3339) {
  absl::Time time;
  std::string error;
  EXPECT_TRUE(absl::ParseTime(absl::RFC3339_full, rfc3339, &time, &error)) << error;
  return time;
}

common::HttpResponse Response(int status, std::string body = "", common::HttpHeaders headers = {}) {
  common::HttpResponse response;
  response.status = status;
  response.body = std::move(body);
  response.headers = std::move(headers);
  return response;
}

LokiConfig ConfigFor(const std::string& url) {
  LokiConfig config;
  config.url = url;
  absl::StatusOr<common::HttpUrl> endpoint = common::ParseHttpUrl(url);
  EXPECT_TRUE(endpoint.ok()) << endpoint.status();
  config.endpoint = *endpoint;
  return config;
}

collector::Payload SomePayload() {
  collector::Payload payload;
  payload.body = "not really a push";
  payload.content_type = "application/x-protobuf";
  payload.entries = 1;
  return payload;
}

TEST(ParseRetryAfterTest, SecondsAndHttpDates) {
  const absl::Time now = At("2015-10-21T07:26:30Z");
  EXPECT_EQ(ParseRetryAfter("120", now), absl::Seconds(120));
  EXPECT_EQ(ParseRetryAfter(" 5 ", now), absl::Seconds(5));
  EXPECT_EQ(ParseRetryAfter("0", now), absl::ZeroDuration());
  EXPECT_EQ(ParseRetryAfter("Wed, 21 Oct 2015 07:28:00 GMT", now), absl::Seconds(90));
  EXPECT_EQ(ParseRetryAfter("Wed, 21 Oct 2015 07:00:00 GMT", now), absl::ZeroDuration());
  EXPECT_EQ(ParseRetryAfter("soon", now), std::nullopt);
  EXPECT_EQ(ParseRetryAfter("-1", now), std::nullopt);
  EXPECT_EQ(ParseRetryAfter("1.5", now), std::nullopt);
  EXPECT_EQ(ParseRetryAfter("", now), std::nullopt);
}

TEST(LokiVerdictTest, SuccessIsOk) {
  for (int status : {200, 204}) {
    const SendResult result = LokiVerdict(Response(status), absl::Now());
    EXPECT_EQ(result.verdict, SendVerdict::kOk) << status;
    EXPECT_EQ(result.detail, absl::StrCat("HTTP ", status));
  }
}

TEST(LokiVerdictTest, BadRequestIsPermanentAndPartlyStored) {
  const std::string body =
      "entry for stream '{job=\"meshtel\"}' has timestamp too old" + std::string(300, '.');
  const SendResult result = LokiVerdict(Response(400, body), absl::Now());
  EXPECT_EQ(result.verdict, SendVerdict::kPermanent);
  EXPECT_TRUE(result.partly_stored);
  EXPECT_FALSE(result.throttled);
  EXPECT_EQ(result.detail, "HTTP 400: " + body.substr(0, 200));
}

TEST(LokiVerdictTest, TooManyRequestsIsThrottledWithRetryAfter) {
  const SendResult result =
      LokiVerdict(Response(429, "rate_limited", {{"Retry-After", "3"}}), absl::Now());
  EXPECT_EQ(result.verdict, SendVerdict::kRetryable);
  EXPECT_TRUE(result.throttled);
  EXPECT_FALSE(result.partly_stored);
  EXPECT_EQ(result.retry_after, absl::Seconds(3));
  EXPECT_EQ(result.detail, "HTTP 429: rate_limited");
  EXPECT_EQ(LokiVerdict(Response(429), absl::Now()).retry_after, std::nullopt);
}

TEST(LokiVerdictTest, ServerErrorsAreRetryable) {
  for (int status : {500, 502, 503, 504}) {
    const SendResult result = LokiVerdict(Response(status), absl::Now());
    EXPECT_EQ(result.verdict, SendVerdict::kRetryable) << status;
    EXPECT_FALSE(result.throttled) << status;
    EXPECT_EQ(result.retry_after, std::nullopt) << status;
  }
  const absl::Time now = At("2015-10-21T07:27:00Z");
  EXPECT_EQ(LokiVerdict(Response(503, "", {{"retry-after", "Wed, 21 Oct 2015 07:28:00 GMT"}}), now)
                .retry_after,
            absl::Seconds(60));
}

TEST(LokiVerdictTest, OtherRefusalsArePermanent) {
  for (int status : {260, 301, 404, 413, 422}) {
    const SendResult result = LokiVerdict(Response(status), absl::Now());
    EXPECT_EQ(result.verdict, SendVerdict::kPermanent) << status;
    EXPECT_FALSE(result.partly_stored) << status;
    EXPECT_FALSE(result.throttled) << status;
  }
}

TEST(LokiVerdictTest, RefusedCredentialsPauseTheExporterInsteadOfRefusingRecords) {
  for (int status : {401, 403}) {
    const SendResult result = LokiVerdict(Response(status, "no org id"), absl::Now());
    EXPECT_EQ(result.verdict, SendVerdict::kRetryable) << status;
    EXPECT_TRUE(result.throttled) << status;
    EXPECT_NE(result.detail.find("configuration error"), std::string::npos) << result.detail;
    EXPECT_NE(result.detail.find("no org id"), std::string::npos) << result.detail;
  }
}

TEST(LokiSenderTest, PostsToTheConfiguredPathWithTenantAndBasicAuth) {
  LokiReceiver receiver;
  LokiConfig config = ConfigFor(receiver.url());
  config.tenant_id = "team-a";
  config.basic_auth_username = "loki";
  config.basic_auth_password = "s3cret";
  LokiSender sender(config);
  const SendResult result = sender.Send(SomePayload());
  EXPECT_EQ(result.verdict, SendVerdict::kOk) << result.detail;
  const auto pushes = receiver.Pushes();
  ASSERT_EQ(pushes.size(), 1u);
  EXPECT_EQ(pushes[0].target, "/loki/api/v1/push");
  EXPECT_EQ(pushes[0].body, "not really a push");
  EXPECT_EQ(pushes[0].headers.at("content-type"), "application/x-protobuf");
  EXPECT_EQ(pushes[0].headers.at("x-scope-orgid"), "team-a");
  EXPECT_EQ(pushes[0].headers.at("authorization"), "Basic " + absl::Base64Escape("loki:s3cret"));
  EXPECT_EQ(pushes[0].headers.count("content-encoding"), 0u);
}

TEST(LokiSenderTest, SendsABearerTokenAndNoTenantWhenNoneIsSet) {
  LokiReceiver receiver;
  LokiConfig config = ConfigFor(receiver.url());
  config.bearer_token = "tok-123";
  LokiSender sender(config);
  EXPECT_EQ(sender.Send(SomePayload()).verdict, SendVerdict::kOk);
  const auto pushes = receiver.Pushes();
  ASSERT_EQ(pushes.size(), 1u);
  EXPECT_EQ(pushes[0].headers.at("authorization"), "Bearer tok-123");
  EXPECT_EQ(pushes[0].headers.count("x-scope-orgid"), 0u);
}

TEST(LokiSenderTest, MapsTheReceiversAnswers) {
  LokiReceiver receiver;
  LokiSender sender(ConfigFor(receiver.url()));
  receiver.Answer(400, {}, "line too long");
  SendResult result = sender.Send(SomePayload());
  EXPECT_EQ(result.verdict, SendVerdict::kPermanent);
  EXPECT_TRUE(result.partly_stored);
  EXPECT_EQ(result.detail, "HTTP 400: line too long");

  receiver.Answer(429, {{"Retry-After", "2"}}, "rate limited");
  result = sender.Send(SomePayload());
  EXPECT_EQ(result.verdict, SendVerdict::kRetryable);
  EXPECT_TRUE(result.throttled);
  EXPECT_EQ(result.retry_after, absl::Seconds(2));

  receiver.Answer(500, {}, "internal");
  result = sender.Send(SomePayload());
  EXPECT_EQ(result.verdict, SendVerdict::kRetryable);
  EXPECT_FALSE(result.throttled);

  receiver.Answer(204);
  EXPECT_EQ(sender.Send(SomePayload()).verdict, SendVerdict::kOk);
  EXPECT_EQ(receiver.Pushes().size(), 4u);
}

TEST(LokiSenderTest, TimeoutIsRetryable) {
  LokiReceiver receiver;
  receiver.Hang();
  LokiConfig config = ConfigFor(receiver.url());
  config.timeout = absl::Milliseconds(200);
  LokiSender sender(config);
  const SendResult result = sender.Send(SomePayload());
  EXPECT_EQ(result.verdict, SendVerdict::kRetryable);
  EXPECT_FALSE(result.throttled);
  EXPECT_NE(result.detail.find("within 200ms"), std::string::npos) << result.detail;
}

TEST(LokiSenderTest, UnreachableLokiIsRetryable) {
  LokiSender sender(
      ConfigFor(absl::StrCat("http://127.0.0.1:", meshtel::testing::FreePort(), "/push")));
  const SendResult result = sender.Send(SomePayload());
  EXPECT_EQ(result.verdict, SendVerdict::kRetryable);
  EXPECT_NE(result.detail.find("cannot connect"), std::string::npos) << result.detail;
}

}  // namespace
}  // namespace meshtel::exporters
