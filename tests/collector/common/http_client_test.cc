#include "collector/common/http_client.h"

#include <mutex>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/support/process.h"
#include "tests/support/test_http_server.h"

namespace meshtel::common {
namespace {

using ::meshtel::testing::TestHttpReply;
using ::meshtel::testing::TestHttpRequest;
using ::meshtel::testing::TestHttpServer;

HttpUrl Loopback(uint16_t port) {
  HttpUrl url;
  url.host = "127.0.0.1";
  url.port = port;
  return url;
}

// Records every request and answers with `reply`.
struct Recorder {
  std::mutex mutex;
  std::vector<TestHttpRequest> requests;
  TestHttpReply reply;

  TestHttpServer::Handler Handler() {
    return [this](const TestHttpRequest& request) {
      std::lock_guard lock(mutex);
      requests.push_back(request);
      return reply;
    };
  }
};

TEST(ParseHttpUrlTest, SplitsHostPortAndTarget) {
  absl::StatusOr<HttpUrl> url = ParseHttpUrl("http://loki.monitoring:3100/loki/api/v1/push");
  ASSERT_TRUE(url.ok()) << url.status();
  EXPECT_EQ(url->host, "loki.monitoring");
  EXPECT_EQ(url->port, 3100);
  EXPECT_EQ(url->target, "/loki/api/v1/push");
  EXPECT_EQ(url->Origin(), "loki.monitoring:3100");
}

TEST(ParseHttpUrlTest, DefaultsPortAndPath) {
  absl::StatusOr<HttpUrl> url = ParseHttpUrl("HTTP://example.org");
  ASSERT_TRUE(url.ok()) << url.status();
  EXPECT_EQ(url->port, 80);
  EXPECT_EQ(url->target, "/");
  url = ParseHttpUrl("http://example.org?a=1");
  ASSERT_TRUE(url.ok()) << url.status();
  EXPECT_EQ(url->target, "/?a=1");
}

TEST(ParseHttpUrlTest, AcceptsBracketedIpv6) {
  absl::StatusOr<HttpUrl> url = ParseHttpUrl("http://[::1]:8080/x");
  ASSERT_TRUE(url.ok()) << url.status();
  EXPECT_EQ(url->host, "::1");
  EXPECT_EQ(url->port, 8080);
  EXPECT_EQ(url->Origin(), "[::1]:8080");
}

TEST(ParseHttpUrlTest, RefusesWhatItCannotSpeak) {
  EXPECT_EQ(ParseHttpUrl("https://loki:3100/").status().message(),
            "'https://loki:3100/' uses https, which is not supported (no TLS): use http://");
  EXPECT_FALSE(ParseHttpUrl("loki:3100").ok());
  EXPECT_FALSE(ParseHttpUrl("http://:3100/").ok());
  EXPECT_FALSE(ParseHttpUrl("http://loki:0/").ok());
  EXPECT_FALSE(ParseHttpUrl("http://loki:70000/").ok());
  EXPECT_FALSE(ParseHttpUrl("http://loki:31x/").ok());
  EXPECT_FALSE(ParseHttpUrl("http://user:pw@loki/").ok());
  EXPECT_FALSE(ParseHttpUrl("http://loki/#frag").ok());
}

TEST(HttpClientTest, PostsBodyAndHeadersAndReturnsTheResponse) {
  Recorder recorder;
  recorder.reply.status = 429;
  recorder.reply.headers = {{"Retry-After", "7"}};
  recorder.reply.body = "slow down";
  TestHttpServer server(recorder.Handler());
  HttpClient client(Loopback(server.port()), {});
  absl::StatusOr<HttpResponse> response =
      client.Post("/push?x=1", {{"X-Scope-OrgID", "team-a"}}, "payload bytes");
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 429);
  EXPECT_EQ(response->body, "slow down");
  EXPECT_EQ(response->Header("retry-after"), "7");
  EXPECT_EQ(response->Header("x-missing"), std::nullopt);
  std::lock_guard lock(recorder.mutex);
  ASSERT_EQ(recorder.requests.size(), 1u);
  const TestHttpRequest& seen = recorder.requests[0];
  EXPECT_EQ(seen.method, "POST");
  EXPECT_EQ(seen.target, "/push?x=1");
  EXPECT_EQ(seen.body, "payload bytes");
  EXPECT_EQ(seen.headers.at("x-scope-orgid"), "team-a");
  EXPECT_EQ(seen.headers.at("host"), absl::StrCat("127.0.0.1:", server.port()));
}

TEST(HttpClientTest, GetsWithoutABodyOnTheSameConnection) {
  Recorder recorder;
  recorder.reply.status = 200;
  recorder.reply.body = "state";
  TestHttpServer server(recorder.Handler());
  HttpClient client(Loopback(server.port()), {});
  for (int i = 0; i < 2; ++i) {
    absl::StatusOr<HttpResponse> response = client.Get("/api/replay", {{"X-Trace", "1"}});
    ASSERT_TRUE(response.ok()) << response.status();
    EXPECT_EQ(response->status, 200);
    EXPECT_EQ(response->body, "state");
  }
  EXPECT_EQ(client.connections_opened(), 1u);
  std::lock_guard lock(recorder.mutex);
  ASSERT_EQ(recorder.requests.size(), 2u);
  EXPECT_EQ(recorder.requests[1].method, "GET");
  EXPECT_EQ(recorder.requests[1].target, "/api/replay");
  EXPECT_EQ(recorder.requests[1].body, "");
  EXPECT_EQ(recorder.requests[1].headers.at("x-trace"), "1");
}

TEST(HttpClientTest, ReusesTheConnection) {
  Recorder recorder;
  TestHttpServer server(recorder.Handler());
  HttpClient client(Loopback(server.port()), {});
  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<HttpResponse> response = client.Post("/", {}, "x");
    ASSERT_TRUE(response.ok()) << response.status();
    EXPECT_EQ(response->status, 204);
  }
  EXPECT_EQ(client.connections_opened(), 1u);
  EXPECT_EQ(server.connections_accepted(), 1u);
  std::lock_guard lock(recorder.mutex);
  ASSERT_EQ(recorder.requests.size(), 3u);
  EXPECT_EQ(recorder.requests[2].connection, 1u);
}

TEST(HttpClientTest, ReconnectsWhenTheServerClosedTheIdleConnection) {
  Recorder recorder;
  recorder.reply.close_after = true;
  TestHttpServer server(recorder.Handler());
  HttpClient client(Loopback(server.port()), {});
  for (int i = 0; i < 2; ++i) {
    absl::StatusOr<HttpResponse> response = client.Post("/", {}, "x");
    ASSERT_TRUE(response.ok()) << response.status();
    EXPECT_EQ(response->status, 204);
  }
  std::lock_guard lock(recorder.mutex);
  EXPECT_EQ(recorder.requests.size(), 2u);
  EXPECT_EQ(client.connections_opened(), 2u);
}

TEST(HttpClientTest, TimesOutOnAServerThatNeverAnswers) {
  Recorder recorder;
  recorder.reply.hang = true;
  TestHttpServer server(recorder.Handler());
  HttpClientOptions options;
  options.timeout = absl::Milliseconds(200);
  HttpClient client(Loopback(server.port()), options);
  absl::StatusOr<HttpResponse> response = client.Post("/", {}, "x");
  ASSERT_FALSE(response.ok());
  EXPECT_EQ(response.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_NE(response.status().message().find("within 200ms"), absl::string_view::npos)
      << response.status();
}

TEST(HttpClientTest, ConnectionRefusedIsUnavailable) {
  const uint16_t port = meshtel::testing::FreePort();
  HttpClient client(Loopback(port), {});
  absl::StatusOr<HttpResponse> response = client.Post("/", {}, "x");
  ASSERT_FALSE(response.ok());
  EXPECT_EQ(response.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(response.status().message().find("cannot connect"), absl::string_view::npos)
      << response.status();
}

TEST(HttpClientTest, ResolvesHostNames) {
  Recorder recorder;
  TestHttpServer server(recorder.Handler());
  HttpUrl url = Loopback(server.port());
  url.host = "localhost";
  HttpClient client(url, {});
  absl::StatusOr<HttpResponse> response = client.Post("/", {}, "x");
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 204);
}

TEST(HttpClientTest, RefusesAResponseBodyOverTheLimit) {
  Recorder recorder;
  recorder.reply.status = 500;
  recorder.reply.body = std::string(2000, 'x');
  TestHttpServer server(recorder.Handler());
  HttpClientOptions options;
  options.max_response_body_bytes = 1000;
  HttpClient client(Loopback(server.port()), options);
  absl::StatusOr<HttpResponse> response = client.Post("/", {}, "x");
  ASSERT_FALSE(response.ok());
  EXPECT_EQ(response.status().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace meshtel::common
