#include "collector/common/http_client.h"

#include <initializer_list>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "boost/asio.hpp"
#include "gtest/gtest.h"
#include "tests/support/process.h"
#include "tests/support/test_certificates.h"
#include "tests/support/test_http_server.h"

namespace meshtel::common {
namespace {

using ::meshtel::testing::TestCertificates;
using ::meshtel::testing::TestHttpReply;
using ::meshtel::testing::TestHttpRequest;
using ::meshtel::testing::TestHttpServer;
using ::meshtel::testing::TestTlsOptions;

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

TEST(ParseHttpUrlTest, HttpsDefaultsToPort443) {
  absl::StatusOr<HttpUrl> url = ParseHttpUrl("HTTPS://logs.example.net/loki/api/v1/push");
  ASSERT_TRUE(url.ok()) << url.status();
  EXPECT_TRUE(url->https);
  EXPECT_EQ(url->host, "logs.example.net");
  EXPECT_EQ(url->port, 443);
  EXPECT_EQ(url->target, "/loki/api/v1/push");
  url = ParseHttpUrl("https://[::1]:8443");
  ASSERT_TRUE(url.ok()) << url.status();
  EXPECT_TRUE(url->https);
  EXPECT_EQ(url->port, 8443);
  url = ParseHttpUrl("http://loki:3100/");
  ASSERT_TRUE(url.ok()) << url.status();
  EXPECT_FALSE(url->https);
  EXPECT_EQ(ParseHttpUrl("https://logs.example.net/")->HostHeader(), "logs.example.net");
  EXPECT_EQ(ParseHttpUrl("https://logs.example.net:8443/")->HostHeader(), "logs.example.net:8443");
  EXPECT_EQ(ParseHttpUrl("http://[::1]/")->HostHeader(), "[::1]");
  EXPECT_EQ(ParseHttpUrl("http://loki:443/")->HostHeader(), "loki:443");
  EXPECT_TRUE(IsHttpsUrl("Https://x"));
  EXPECT_FALSE(IsHttpsUrl("http://x"));
}

TEST(ParseHttpUrlTest, RefusesWhatItCannotSpeak) {
  EXPECT_EQ(ParseHttpUrl("ftp://loki:3100/").status().message(),
            "'ftp://loki:3100/' is not an http:// or https:// URL");
  EXPECT_FALSE(ParseHttpUrl("https://").ok());
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

TEST(HttpClientTest, AResponseTrailerOverTheReadBufferIsUnavailable) {
  // A server that answers any request with a chunked response whose trailer field is 100 KiB
  // (Beast's parser would throw on a field over 64 KiB).
  boost::asio::io_context io_context;
  boost::asio::ip::tcp::acceptor acceptor(io_context,
                                          {boost::asio::ip::make_address("127.0.0.1"), 0});
  std::thread server([&acceptor] {
    boost::asio::ip::tcp::socket socket(acceptor.get_executor());
    acceptor.accept(socket);
    char request[4096];
    boost::system::error_code error;
    socket.read_some(boost::asio::buffer(request), error);
    boost::asio::write(socket,
                       boost::asio::buffer("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                           "2\r\nok\r\n0\r\nx-big: " +
                                           std::string(100 * 1024, 't') + "\r\n\r\n"),
                       error);
  });
  HttpClient client(Loopback(acceptor.local_endpoint().port()), HttpClientOptions{});
  absl::StatusOr<HttpResponse> response = client.Post("/", {}, "x");
  server.join();
  ASSERT_FALSE(response.ok());
  EXPECT_EQ(response.status().code(), absl::StatusCode::kUnavailable) << response.status();
}

// --- https:// ---

// The test CA, the server certificate for kTestServerName and the client certificate, made once.
const TestCertificates& Certificates() {
  static const TestCertificates* certificates = new TestCertificates(
      testing::MakeTestCertificates(testing::MakeTempDir("meshtel-http-client-tls")));
  return *certificates;
}

#define SKIP_WITHOUT_CERTIFICATES() \
  if (!Certificates().unavailable.empty()) GTEST_SKIP() << Certificates().unavailable

TestTlsOptions ServerTls(bool require_client_certificate = false) {
  TestTlsOptions tls;
  tls.cert_pem = Certificates().server_cert_pem;
  tls.key_pem = Certificates().server_key_pem;
  if (require_client_certificate) tls.client_ca_pem = Certificates().ca_pem;
  return tls;
}

// https://127.0.0.1:<port>
HttpUrl TlsLoopback(uint16_t port) {
  HttpUrl url = Loopback(port);
  url.https = true;
  return url;
}

// Trusts the test CA and expects the test server name.
HttpClientOptions TrustingOptions() {
  HttpClientOptions options;
  options.tls.ca_pem = Certificates().ca_pem;
  options.tls.server_name = testing::kTestServerName;
  return options;
}

TEST(HttpClientTlsTest, PostsOverTlsAndKeepsTheConnection) {
  SKIP_WITHOUT_CERTIFICATES();
  Recorder recorder;
  recorder.reply.status = 200;
  recorder.reply.body = "over tls";
  TestHttpServer server(recorder.Handler(), ServerTls());
  HttpClient client(TlsLoopback(server.port()), TrustingOptions());
  ASSERT_TRUE(client.tls_status().ok()) << client.tls_status();
  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<HttpResponse> response = client.Post("/push", {{"X-Scope-OrgID", "a"}}, "body");
    ASSERT_TRUE(response.ok()) << response.status();
    EXPECT_EQ(response->status, 200);
    EXPECT_EQ(response->body, "over tls");
  }
  absl::StatusOr<HttpResponse> got = client.Get("/state");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(client.connections_opened(), 1u);
  EXPECT_EQ(server.connections_accepted(), 1u);
  EXPECT_EQ(server.tls_handshakes(), 1u);
  std::lock_guard lock(recorder.mutex);
  ASSERT_EQ(recorder.requests.size(), 4u);
  EXPECT_EQ(recorder.requests[0].body, "body");
  EXPECT_EQ(recorder.requests[0].headers.at("x-scope-orgid"), "a");
  EXPECT_EQ(recorder.requests[3].method, "GET");
}

TEST(HttpClientTlsTest, ThePlaintextClientCannotTalkToTheTlsServer) {
  SKIP_WITHOUT_CERTIFICATES();
  Recorder recorder;
  TestHttpServer server(recorder.Handler(), ServerTls());
  HttpClientOptions options;
  options.timeout = absl::Seconds(5);
  HttpClient client(Loopback(server.port()), options);
  absl::StatusOr<HttpResponse> response = client.Post("/", {}, "x");
  EXPECT_FALSE(response.ok() && response->status == 204);
  std::lock_guard lock(recorder.mutex);
  EXPECT_TRUE(recorder.requests.empty());
}

TEST(HttpClientTlsTest, ReconnectsOverTlsWhenTheServerClosedTheIdleConnection) {
  SKIP_WITHOUT_CERTIFICATES();
  Recorder recorder;
  recorder.reply.close_after = true;
  TestHttpServer server(recorder.Handler(), ServerTls());
  HttpClient client(TlsLoopback(server.port()), TrustingOptions());
  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<HttpResponse> response = client.Post("/", {}, "x");
    ASSERT_TRUE(response.ok()) << response.status();
    EXPECT_EQ(response->status, 204);
  }
  EXPECT_EQ(client.connections_opened(), 3u);
  std::lock_guard lock(recorder.mutex);
  EXPECT_EQ(recorder.requests.size(), 3u);
}

// A failed Post(): Unavailable, with every one of `fragments` in its message.
void ExpectUnavailableSaying(const absl::StatusOr<HttpResponse>& response,
                             std::initializer_list<absl::string_view> fragments) {
  ASSERT_FALSE(response.ok());
  EXPECT_EQ(response.status().code(), absl::StatusCode::kUnavailable);
  for (absl::string_view fragment : fragments) {
    EXPECT_NE(response.status().message().find(fragment), absl::string_view::npos)
        << "no '" << fragment << "' in " << response.status();
  }
}

TEST(HttpClientTlsTest, AnUntrustedServerFailsVerification) {
  SKIP_WITHOUT_CERTIFICATES();
  Recorder recorder;
  TestHttpServer server(recorder.Handler(), ServerTls());
  // No CA: the system's roots do not hold the test CA.
  HttpClientOptions system_roots;
  system_roots.tls.server_name = testing::kTestServerName;
  // Another CA: the server's certificate chain is not signed by it.
  const TestCertificates other =
      testing::MakeTestCertificates(testing::MakeTempDir("meshtel-http-client-other-ca"));
  ASSERT_TRUE(other.unavailable.empty()) << other.unavailable;
  HttpClientOptions other_ca = TrustingOptions();
  other_ca.tls.ca_pem = other.ca_pem;
  for (const HttpClientOptions& options : {system_roots, other_ca}) {
    HttpClient client(TlsLoopback(server.port()), options);
    ExpectUnavailableSaying(
        client.Post("/", {}, "x"),
        {"TLS verification of the server certificate of 127.0.0.1:", "certificate verify failed"});
  }
  std::lock_guard lock(recorder.mutex);
  EXPECT_TRUE(recorder.requests.empty());
}

TEST(HttpClientTlsTest, AServerCertificateForAnotherNameFailsVerification) {
  SKIP_WITHOUT_CERTIFICATES();
  Recorder recorder;
  TestHttpServer server(recorder.Handler(), ServerTls());
  HttpClientOptions options = TrustingOptions();
  options.tls.server_name = "other.example";
  HttpClient client(TlsLoopback(server.port()), options);
  ExpectUnavailableSaying(client.Post("/", {}, "x"),
                          {"TLS verification", "other.example", "hostname mismatch"});
  // Without a server_name the URL's host (127.0.0.1) must be in the certificate, and is not.
  HttpClientOptions by_host = TrustingOptions();
  by_host.tls.server_name.clear();
  HttpClient host_client(TlsLoopback(server.port()), by_host);
  ExpectUnavailableSaying(host_client.Post("/", {}, "x"), {"TLS verification"});
  std::lock_guard lock(recorder.mutex);
  EXPECT_TRUE(recorder.requests.empty());
}

TEST(HttpClientTlsTest, MutualTlsNeedsTheClientCertificate) {
  SKIP_WITHOUT_CERTIFICATES();
  Recorder recorder;
  TestHttpServer server(recorder.Handler(), ServerTls(/*require_client_certificate=*/true));
  HttpClient anonymous(TlsLoopback(server.port()), TrustingOptions());
  absl::StatusOr<HttpResponse> refused = anonymous.Post("/", {}, "x");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnavailable) << refused.status();
  {
    std::lock_guard lock(recorder.mutex);
    EXPECT_TRUE(recorder.requests.empty());
  }
  HttpClientOptions options = TrustingOptions();
  options.tls.cert_pem = Certificates().client_cert_pem;
  options.tls.key_pem = Certificates().client_key_pem;
  HttpClient identified(TlsLoopback(server.port()), options);
  absl::StatusOr<HttpResponse> accepted = identified.Post("/", {}, "x");
  ASSERT_TRUE(accepted.ok()) << accepted.status();
  EXPECT_EQ(accepted->status, 204);
  std::lock_guard lock(recorder.mutex);
  EXPECT_EQ(recorder.requests.size(), 1u);
}

TEST(HttpClientTlsTest, TheDeadlineCoversAHandshakeThatNeverCompletes) {
  SKIP_WITHOUT_CERTIFICATES();
  // The kernel accepts the TCP connection into the listen backlog; nobody ever answers the
  // ClientHello.
  boost::asio::io_context io_context;
  boost::asio::ip::tcp::acceptor silent(
      io_context, boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0));
  HttpClientOptions options = TrustingOptions();
  options.timeout = absl::Milliseconds(300);
  HttpClient client(TlsLoopback(silent.local_endpoint().port()), options);
  const absl::Time start = absl::Now();
  absl::StatusOr<HttpResponse> response = client.Post("/", {}, "x");
  const absl::Duration took = absl::Now() - start;
  ASSERT_FALSE(response.ok());
  EXPECT_EQ(response.status().code(), absl::StatusCode::kDeadlineExceeded) << response.status();
  EXPECT_EQ(client.connections_opened(), 1u);
  EXPECT_LT(took, absl::Seconds(3));
}

TEST(HttpClientTlsTest, OptionsOpenSslRefusesFailEveryRequest) {
  SKIP_WITHOUT_CERTIFICATES();
  HttpClientOptions options = TrustingOptions();
  options.tls.cert_pem = Certificates().client_cert_pem;
  options.tls.key_pem = Certificates().server_key_pem;  // not the certificate's key
  HttpClient client(TlsLoopback(testing::FreePort()), options);
  EXPECT_EQ(client.tls_status().code(), absl::StatusCode::kInvalidArgument);
  absl::StatusOr<HttpResponse> response = client.Post("/", {}, "x");
  ASSERT_FALSE(response.ok());
  EXPECT_EQ(response.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(response.status().message().find("the client key cannot be used"),
            absl::string_view::npos)
      << response.status();
  EXPECT_EQ(client.connections_opened(), 0u);
  HttpClientOptions garbage = TrustingOptions();
  garbage.tls.ca_pem = "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n";
  HttpClient garbage_client(TlsLoopback(testing::FreePort()), garbage);
  EXPECT_EQ(garbage_client.tls_status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(HttpClientTlsTest, TlsOptionsComeFromTheTlsBlock) {
  TlsConfig config;
  config.enabled = true;
  config.ca_file = "/ca.pem";
  config.ca_pem = "ca";
  config.cert_pem = "cert";
  config.key_pem = "key";
  config.server_name = "loki.example";
  const HttpTlsOptions options = HttpTlsOptions::From(config);
  EXPECT_EQ(options.ca_pem, "ca");
  EXPECT_EQ(options.cert_pem, "cert");
  EXPECT_EQ(options.key_pem, "key");
  EXPECT_EQ(options.server_name, "loki.example");
}

}  // namespace
}  // namespace meshtel::common
