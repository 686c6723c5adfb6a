// ProxyServer in-process, between a loopback test client and a loopback test upstream.

#include "proxy/http/proxy_server.h"

#include <atomic>
#include <cstring>
#include <fstream>
#include <limits>
#include <mutex>
#include <thread>
#include <utility>

#include "boost/asio.hpp"
#include "boost/beast.hpp"
#include "gtest/gtest.h"
#include "proxy/identity/peer_metadata.h"
#include "proxy/policy/active_policy.h"
#include "proxy/trace/trace_context.h"
#include "tests/support/http_get.h"
#include "tests/support/process.h"

namespace meshtel::proxy {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

class CapturingSink : public RecordSink {
 public:
  void Submit(const meshtel::v1::RequestRecord& record) override {
    std::lock_guard<std::mutex> lock(mutex_);
    records_.push_back(record);
  }
  std::vector<meshtel::v1::RequestRecord> Wait(size_t count) {
    testing::WaitFor(
        [&] {
          std::lock_guard<std::mutex> lock(mutex_);
          return records_.size() >= count;
        },
        std::chrono::seconds(10));
    std::lock_guard<std::mutex> lock(mutex_);
    return records_;
  }

 private:
  std::mutex mutex_;
  std::vector<meshtel::v1::RequestRecord> records_;
};

// Answers /echo with the request's headers (one "name: value" per line), /slow after 2 s,
// /close with Connection: close; /reset closes without answering, /truncate closes mid-body. Counts
// the connections it accepted.
class TestUpstream {
 public:
  TestUpstream() : acceptor_(io_context_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
    thread_ = std::thread([this] { AcceptLoop(); });
  }
  ~TestUpstream() {
    stopping_ = true;
    {  // wake the blocking accept()
      tcp::socket wake(io_context_);
      beast::error_code ignored;
      wake.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port_), ignored);
    }
    thread_.join();
    for (auto& worker : workers_) worker.join();
  }
  uint16_t port() const { return port_; }
  int connections() const { return connections_.load(); }

 private:
  void AcceptLoop() {
    for (;;) {
      tcp::socket socket(io_context_);
      beast::error_code error;
      acceptor_.accept(socket, error);
      if (error || stopping_) return;
      ++connections_;
      workers_.emplace_back([this, socket = std::move(socket)]() mutable { Serve(socket); });
    }
  }
  void Serve(tcp::socket& socket) {
    beast::flat_buffer buffer;
    beast::error_code error;
    for (;;) {
      // Bodies are read piece by piece: /upload only counts them, so it holds none in memory.
      http::request_parser<http::buffer_body> parser;
      parser.body_limit(std::numeric_limits<uint64_t>::max());
      parser.header_limit(64 * 1024);  // the proxy forwards heads up to its 60 KiB limit
      http::read_header(socket, buffer, parser, error);
      if (error) return;
      const std::string target(parser.get().target());
      std::string received;
      uint64_t received_bytes = 0;
      char piece[64 * 1024];
      while (!parser.is_done()) {
        parser.get().body().data = piece;
        parser.get().body().size = sizeof(piece);
        http::read(socket, buffer, parser, error);
        if (error == http::error::need_buffer) error = {};
        if (error) return;
        const size_t got = sizeof(piece) - parser.get().body().size;
        received_bytes += got;
        if (target != "/upload") received.append(piece, got);
      }
      const auto& request = parser.get();
      if (target == "/upgrade" && !request[http::field::upgrade].empty()) {
        ServeUpgrade(socket, buffer);
        return;
      }
      if (target == "/reset") return;  // closes without a response
      if (target == "/truncate") {     // promises 100 bytes, sends 10, closes
        asio::write(socket,
                    asio::buffer(std::string("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"
                                             "0123456789")),
                    error);
        return;
      }
      if (target == "/trailers") {
        SendWithTrailers(socket, error);
        if (error) return;
        continue;
      }
      if (target == "/big-trailer") {  // a response trailer field of 100 KiB
        asio::write(socket,
                    asio::buffer("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                 "5\r\nhello\r\n0\r\nx-big: " +
                                 std::string(100 * 1024, 't') + "\r\n\r\n"),
                    error);
        if (error) return;
        continue;
      }
      if (target.starts_with("/big-head?kib=")) {  // a response head with a field of N KiB
        const size_t bytes = std::stoull(target.substr(14)) * 1024;
        asio::write(socket,
                    asio::buffer("HTTP/1.1 200 OK\r\nx-big: " + std::string(bytes, 'h') +
                                 "\r\nContent-Length: 2\r\n\r\nok"),
                    error);
        if (error) return;
        continue;
      }
      if (target == "/garbage") {  // not an HTTP response at all
        asio::write(socket, asio::buffer(std::string("SPDY/9 what\r\n\r\n")), error);
        return;
      }
      if (target.starts_with("/download?bytes=")) {
        SendDownload(socket, std::stoull(target.substr(16)), error);
        if (error) return;
        continue;
      }
      http::response<http::string_body> response{http::status::ok, 11};
      std::string body;
      for (const auto& field : request) {
        body += std::string(field.name_string()) + ": " + std::string(field.value()) + "\n";
      }
      body += "body: " + received + "\n";
      if (target == "/upload") body = "received: " + std::to_string(received_bytes) + "\n";
      if (target == "/slow") std::this_thread::sleep_for(std::chrono::seconds(2));
      if (target == "/status/503") response.result(http::status::service_unavailable);
      response.body() = body;
      response.keep_alive(target != "/close" && request.keep_alive());
      response.prepare_payload();
      http::write(socket, response, error);
      if (error || !response.keep_alive()) return;
    }
  }

  // 101 Switching Protocols, then every byte received is sent back until the client closes.
  static void ServeUpgrade(tcp::socket& socket, beast::flat_buffer& buffer) {
    beast::error_code error;
    asio::write(socket,
                asio::buffer(std::string("HTTP/1.1 101 Switching Protocols\r\n"
                                         "Upgrade: echo\r\nConnection: Upgrade\r\n\r\n")),
                error);
    if (buffer.size() > 0) asio::write(socket, buffer.data(), error);
    char data[4096];
    while (!error) {
      const size_t got = socket.read_some(asio::buffer(data), error);
      if (got > 0) asio::write(socket, asio::buffer(data, got), error);
    }
    socket.shutdown(tcp::socket::shutdown_send, error);
  }

  // A chunked response "hello" with two trailer fields.
  static void SendWithTrailers(tcp::socket& socket, beast::error_code& error) {
    asio::write(socket,
                asio::buffer(std::string("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                                         "Trailer: x-checksum, grpc-status\r\n\r\n"
                                         "5\r\nhello\r\n0\r\nx-checksum: abc\r\n"
                                         "grpc-status: 0\r\n\r\n")),
                error);
  }

  // A chunked response of `bytes` bytes, written 64 KiB at a time.
  static void SendDownload(tcp::socket& socket, uint64_t bytes, beast::error_code& error) {
    http::response<http::buffer_body> response{http::status::ok, 11};
    response.chunked(true);
    http::response_serializer<http::buffer_body> serializer(response);
    http::write_header(socket, serializer, error);
    static char piece[64 * 1024];
    std::memset(piece, 'd', sizeof(piece));
    while (!error && bytes > 0) {
      const size_t size = static_cast<size_t>(std::min<uint64_t>(bytes, sizeof(piece)));
      response.body().data = piece;
      response.body().size = size;
      response.body().more = true;
      http::write(socket, serializer, error);
      if (error == http::error::need_buffer) error = {};
      bytes -= size;
    }
    if (error) return;
    response.body().data = nullptr;
    response.body().size = 0;
    response.body().more = false;
    http::write(socket, serializer, error);
  }

  asio::io_context io_context_;
  tcp::acceptor acceptor_;
  uint16_t port_ = acceptor_.local_endpoint().port();
  std::atomic<bool> stopping_{false};
  std::atomic<int> connections_{0};
  std::thread thread_;
  std::vector<std::thread> workers_;
};

class ProxyServerTest : public ::testing::Test {
 protected:
  void StartProxy(uint16_t upstream_port, absl::Duration route_timeout = absl::Seconds(15),
                  double sampling_percentage = 1.0, uint64_t max_body_bytes = 0) {
    ProxyConfig config;
    config.max_body_bytes = max_body_bytes;
    config.tracing.random_sampling_percentage = sampling_percentage;
    config.io_threads = io_threads_;
    config.upstream = upstream_config_;
    config.workload.name = "frontend";
    config.workload.namespace_name = "shop";
    config.workload.service_host = "frontend.shop.svc.cluster.local";
    config.inbound.listen = common::HostPort{"127.0.0.1", 0};
    config.inbound.app = common::HostPort{"127.0.0.1", upstream_port};
    config.outbound.listen = common::HostPort{"127.0.0.1", 0};
    RouteConfig route;
    route.host = "backend.shop.svc.cluster.local";
    route.addresses = {common::HostPort{"127.0.0.1", upstream_port}};
    route.timeout = route_timeout;
    RouteConfig dead;
    dead.host = "dead.shop.svc.cluster.local";
    dead.addresses = {common::HostPort{"127.0.0.1", testing::FreePort()}};
    config.outbound.routes = {route, dead};
    config.drain_timeout = drain_timeout_;
    config.capture_request_headers = capture_request_headers_;
    config_ = config;
    auto server = ProxyServer::Start(config, sink_, policy_.get());
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
  }

  // GET /slow (answered after 2 s) on another thread; once it is in flight (its upstream
  // connection open) the proxy is shut down, as on SIGTERM, and destroyed, as the process exits
  // after its drain. Returns what the client got.
  testing::HttpResult SlowRequestAcrossShutdown() {
    const uint16_t port = server_->outbound_port();
    testing::HttpResult result;
    std::thread slow([&] { result = testing::HttpGet(port, "/slow", {{"Host", "backend"}}); });
    EXPECT_TRUE(testing::WaitFor([&] { return server_->upstream_connections_open() == 1; },
                                 std::chrono::seconds(10)));
    server_->Shutdown();  // returns once the request is done or the drain timeout passed
    server_.reset();
    slow.join();
    return result;
  }

  static std::string Header(const std::string& echo, const std::string& name) {
    const std::string key = name + ": ";
    const size_t at = echo.find(key);
    if (at == std::string::npos) return "";
    return echo.substr(at + key.size(), echo.find('\n', at) - at - key.size());
  }

  uint32_t io_threads_ = 2;
  absl::Duration drain_timeout_ = absl::Seconds(1);
  std::vector<std::string> capture_request_headers_;
  ProxyConfig config_;
  std::unique_ptr<PolicyHolder> policy_;  // set before StartProxy to enforce a policy
  UpstreamConfig upstream_config_;
  CapturingSink sink_;
  TestUpstream upstream_;
  std::unique_ptr<ProxyServer> server_;
};

TEST_F(ProxyServerTest, OutboundForwardsAndRecordsTheRequest) {
  StartProxy(upstream_.port());
  testing::HttpResult result = testing::HttpRequest(server_->outbound_port(), "POST", "/echo?q=1",
                                                    {{"Host", "backend:8080"},
                                                     {"Connection", "keep-alive, X-Hop"},
                                                     {"X-Hop", "secret"},
                                                     {"Keep-Alive", "timeout=5"},
                                                     {"User-Agent", "unit-test"}},
                                                    "payload");
  ASSERT_EQ(result.status, 200) << result.error;
  const std::string request_id = Header(result.body, "x-request-id");
  EXPECT_EQ(request_id.size(), 36u) << result.body;
  EXPECT_EQ(Header(result.body, "X-Hop"), "");
  EXPECT_EQ(Header(result.body, "Keep-Alive"), "");
  EXPECT_EQ(Header(result.body, "Host"), "backend:8080");
  EXPECT_NE(result.body.find("body: payload"), std::string::npos);
  meshtel::v1::WorkloadIdentity sent;
  ASSERT_TRUE(DecodePeerMetadata(Header(result.body, "x-envoy-peer-metadata"), sent));
  EXPECT_EQ(sent.workload(), "frontend");
  EXPECT_EQ(Header(result.body, "x-envoy-peer-metadata-id"), "frontend.shop");

  auto records = sink_.Wait(1);
  ASSERT_EQ(records.size(), 1u);
  const auto& record = records[0];
  EXPECT_EQ(record.reporter(), meshtel::v1::REPORTER_SOURCE);
  EXPECT_EQ(record.method(), "POST");
  EXPECT_EQ(record.path(), "/echo?q=1");
  EXPECT_EQ(record.authority(), "backend:8080");
  EXPECT_EQ(record.protocol(), "HTTP/1.1");
  EXPECT_EQ(record.user_agent(), "unit-test");
  EXPECT_EQ(record.request_id(), request_id);
  EXPECT_EQ(record.response_code(), 200u);
  EXPECT_EQ(record.response_flags(), 0u);
  EXPECT_EQ(record.response_code_details(), "via_upstream");
  EXPECT_EQ(record.upstream_host(), "127.0.0.1:" + std::to_string(upstream_.port()));
  EXPECT_EQ(record.upstream_cluster(),
            "outbound|" + std::to_string(upstream_.port()) + "||backend.shop.svc.cluster.local");
  EXPECT_EQ(record.destination_service().name(), "backend");
  EXPECT_EQ(record.source().workload(), "frontend");
  EXPECT_GT(record.request_bytes(), 7u);
  EXPECT_GT(record.response_bytes(), 0u);
  EXPECT_GT(record.start_time_unix_nano(), 0u);
  // Phases are in order and within the request.
  const auto& p = record.phases();
  const std::vector<uint64_t> ordered = {
      p.downstream_headers_done_ns(), p.route_chosen_ns(),          p.upstream_connected_ns(),
      p.upstream_headers_sent_ns(),   p.upstream_request_done_ns(), p.upstream_first_byte_ns(),
      p.upstream_last_byte_ns(),      p.downstream_last_byte_ns()};
  for (size_t i = 0; i < ordered.size(); ++i) {
    EXPECT_GT(ordered[i], 0u) << i;
    if (i > 0) {
      EXPECT_GE(ordered[i], ordered[i - 1]) << i;
    }
  }
  EXPECT_EQ(p.downstream_last_byte_ns(), record.duration_ns());
  EXPECT_FALSE(p.upstream_connection_reused());
}

TEST_F(ProxyServerTest, CapturesTheConfiguredRequestHeadersOnBothListeners) {
  capture_request_headers_ = {"x-user-tier", "x-tenant", "x-absent"};
  StartProxy(upstream_.port());
  testing::HttpResult outbound = testing::HttpGet(
      server_->outbound_port(), "/echo",
      {{"Host", "backend"}, {"X-User-Tier", "gold"}, {"x-tenant", "t1"}, {"x-other", "no"}});
  ASSERT_EQ(outbound.status, 200) << outbound.error;
  EXPECT_EQ(Header(outbound.body, "X-User-Tier"), "gold");  // forwarded unchanged
  auto records = sink_.Wait(1);
  ASSERT_EQ(records.size(), 1u);
  ASSERT_EQ(records[0].captured_headers_size(), 2);  // in configured order; absent ones left out
  EXPECT_EQ(records[0].captured_headers(0).name(), "x-user-tier");
  EXPECT_EQ(records[0].captured_headers(0).value(), "gold");
  EXPECT_EQ(records[0].captured_headers(1).name(), "x-tenant");
  EXPECT_EQ(records[0].captured_headers(1).value(), "t1");

  testing::HttpResult inbound =
      testing::HttpGet(server_->inbound_port(), "/echo", {{"x-user-tier", "silver"}});
  ASSERT_EQ(inbound.status, 200) << inbound.error;
  records = sink_.Wait(2);
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[1].reporter(), meshtel::v1::REPORTER_DESTINATION);
  ASSERT_EQ(records[1].captured_headers_size(), 1);
  EXPECT_EQ(records[1].captured_headers(0).value(), "silver");
}

TEST_F(ProxyServerTest, CapturesNoHeadersByDefault) {
  StartProxy(upstream_.port());
  ASSERT_EQ(testing::HttpGet(server_->outbound_port(), "/echo",
                             {{"Host", "backend"}, {"x-user-tier", "gold"}})
                .status,
            200);
  EXPECT_EQ(sink_.Wait(1)[0].captured_headers_size(), 0);
}

TEST_F(ProxyServerTest, KeepsAnExistingRequestId) {
  StartProxy(upstream_.port());
  testing::HttpResult result = testing::HttpGet(server_->outbound_port(), "/echo",
                                                {{"Host", "backend"}, {"x-request-id", "abc-123"}});
  ASSERT_EQ(result.status, 200);
  EXPECT_EQ(Header(result.body, "x-request-id"), "abc-123");
  EXPECT_EQ(sink_.Wait(1)[0].request_id(), "abc-123");
}

TEST_F(ProxyServerTest, ReusesTheUpstreamConnectionOnKeepAlive) {
  StartProxy(upstream_.port());
  asio::io_context io_context;
  tcp::socket socket(io_context);
  socket.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), server_->outbound_port()));
  beast::flat_buffer buffer;
  for (int i = 0; i < 3; ++i) {
    http::request<http::string_body> request{http::verb::get, "/echo", 11};
    request.set(http::field::host, "backend.shop");
    http::write(socket, request);
    http::response<http::string_body> response;
    http::read(socket, buffer, response);
    EXPECT_EQ(response.result_int(), 200u);
    EXPECT_TRUE(response.keep_alive());
  }
  auto records = sink_.Wait(3);
  ASSERT_EQ(records.size(), 3u);
  EXPECT_EQ(upstream_.connections(), 1);
  EXPECT_FALSE(records[0].phases().upstream_connection_reused());
  EXPECT_TRUE(records[1].phases().upstream_connection_reused());
  EXPECT_TRUE(records[2].phases().upstream_connection_reused());
}

// Sends `request` on `socket` and reads the response.
http::response<http::string_body> Exchange(tcp::socket& socket, beast::flat_buffer& buffer,
                                           const http::request<http::string_body>& request) {
  http::write(socket, request);
  http::response<http::string_body> response;
  http::read(socket, buffer, response);
  return response;
}

TEST_F(ProxyServerTest, EachRecordOfAConnectionHoldsOnlyItsOwnRequest) {
  // One record per connection is reused from request to request: what one request set must not
  // show in the next one's record.
  StartProxy(upstream_.port());
  asio::io_context io_context;
  beast::flat_buffer buffer;
  tcp::socket inbound(io_context);
  inbound.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), server_->inbound_port()));
  meshtel::v1::WorkloadIdentity caller;
  caller.set_workload("checkout");
  caller.set_namespace_("shop");
  http::request<http::string_body> first{http::verb::get, "/echo", 11};
  first.set(http::field::host, "frontend");
  first.set(http::field::user_agent, "first-agent");
  first.set("x-request-id", "first-request");
  first.set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  first.set("x-envoy-peer-metadata", EncodePeerMetadata(caller));
  EXPECT_EQ(Exchange(inbound, buffer, first).result_int(), 200u);
  http::request<http::string_body> second{http::verb::get, "/echo", 11};
  second.set(http::field::host, "frontend");
  const auto second_response = Exchange(inbound, buffer, second);
  EXPECT_EQ(second_response.result_int(), 200u);

  auto records = sink_.Wait(2);
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0].source().workload(), "checkout");
  EXPECT_EQ(records[0].user_agent(), "first-agent");
  EXPECT_EQ(records[0].request_id(), "first-request");
  EXPECT_EQ(records[0].parent_span_id().size(), 8u);
  EXPECT_FALSE(records[1].has_source());  // no peer metadata this time
  EXPECT_EQ(records[1].destination().workload(), "frontend");
  EXPECT_EQ(records[1].user_agent(), "");
  EXPECT_EQ(records[1].request_id(), Header(second_response.body(), "x-request-id"));
  EXPECT_EQ(records[1].request_id().size(), 36u);
  EXPECT_EQ(records[1].parent_span_id(), "");
  EXPECT_NE(records[1].trace_id(), records[0].trace_id());
  EXPECT_GT(records[1].phases().downstream_headers_done_ns(), 0u);

  // Outbound: a routed request, then one with no route on the same connection.
  tcp::socket outbound(io_context);
  outbound.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), server_->outbound_port()));
  http::request<http::string_body> routed{http::verb::get, "/echo", 11};
  routed.set(http::field::host, "backend.shop");
  EXPECT_EQ(Exchange(outbound, buffer, routed).result_int(), 200u);
  http::request<http::string_body> unrouted{http::verb::get, "/", 11};
  unrouted.set(http::field::host, "nowhere");
  EXPECT_EQ(Exchange(outbound, buffer, unrouted).result_int(), 404u);
  records = sink_.Wait(4);
  ASSERT_EQ(records.size(), 4u);
  EXPECT_EQ(records[2].destination_service().name(), "backend");
  EXPECT_FALSE(records[2].upstream_host().empty());
  EXPECT_EQ(records[3].destination_service().host(), "nowhere");
  EXPECT_EQ(records[3].destination_service().name(), "");
  EXPECT_EQ(records[3].upstream_host(), "");
  EXPECT_EQ(records[3].upstream_cluster(), "");
  EXPECT_FALSE(records[3].has_destination());
  EXPECT_EQ(records[3].source().workload(), "frontend");
}

TEST_F(ProxyServerTest, ARequestArrivingInPiecesIsForwardedWhole) {
  // The proxy parses what it has buffered before it reads again: a head or a body that arrives
  // in several pieces must still go out whole.
  StartProxy(upstream_.port());
  asio::io_context io_context;
  tcp::socket socket(io_context);
  socket.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), server_->outbound_port()));
  socket.set_option(tcp::no_delay(true));
  const std::vector<std::string> pieces = {"POST /echo HT", "TP/1.1\r\nHost: backend\r\nContent-Le",
                                           "ngth: 10\r\n\r\nfirst", "-half"};
  for (const std::string& piece : pieces) {
    asio::write(socket, asio::buffer(piece));
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // let the proxy see each one
  }
  beast::flat_buffer buffer;
  http::response<http::string_body> response;
  http::read(socket, buffer, response);
  EXPECT_EQ(response.result_int(), 200u);
  EXPECT_NE(response.body().find("body: first-half\n"), std::string::npos) << response.body();
  EXPECT_EQ(Header(response.body(), "Host"), "backend");
  // The same connection carries the next request.
  http::request<http::string_body> next{http::verb::get, "/echo", 11};
  next.set(http::field::host, "backend");
  EXPECT_EQ(Exchange(socket, buffer, next).result_int(), 200u);
  auto records = sink_.Wait(2);
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0].method(), "POST");
  EXPECT_EQ(records[1].method(), "GET");
}

TEST_F(ProxyServerTest, NoRouteIs404WithNR) {
  StartProxy(upstream_.port());
  testing::HttpResult result =
      testing::HttpGet(server_->outbound_port(), "/", {{"Host", "nowhere"}});
  EXPECT_EQ(result.status, 404);
  auto record = sink_.Wait(1)[0];
  EXPECT_EQ(record.response_code(), 404u);
  EXPECT_EQ(record.response_flags(), uint64_t{1} << meshtel::v1::RESPONSE_FLAG_NO_ROUTE_FOUND);
  EXPECT_EQ(record.response_code_details(), "route_not_found");
}

TEST_F(ProxyServerTest, DeadUpstreamIs503WithUF) {
  StartProxy(upstream_.port());
  testing::HttpResult result =
      testing::HttpGet(server_->outbound_port(), "/", {{"Host", "dead.shop"}});
  EXPECT_EQ(result.status, 503);
  EXPECT_NE(result.body.find("connection failure"), std::string::npos);
  auto record = sink_.Wait(1)[0];
  EXPECT_EQ(record.response_flags(),
            uint64_t{1} << meshtel::v1::RESPONSE_FLAG_UPSTREAM_CONNECTION_FAILURE);
}

TEST_F(ProxyServerTest, SlowUpstreamIs504WithUT) {
  StartProxy(upstream_.port(), absl::Milliseconds(200));
  testing::HttpResult result =
      testing::HttpGet(server_->outbound_port(), "/slow", {{"Host", "backend"}});
  EXPECT_EQ(result.status, 504);
  auto record = sink_.Wait(1)[0];
  EXPECT_EQ(record.response_flags(),
            uint64_t{1} << meshtel::v1::RESPONSE_FLAG_UPSTREAM_REQUEST_TIMEOUT);
  EXPECT_EQ(record.response_code(), 504u);
}

TEST_F(ProxyServerTest, UpstreamErrorStatusPassesThrough) {
  StartProxy(upstream_.port());
  EXPECT_EQ(testing::HttpGet(server_->outbound_port(), "/status/503", {{"Host", "backend"}}).status,
            503);
  auto record = sink_.Wait(1)[0];
  EXPECT_EQ(record.response_code(), 503u);
  EXPECT_EQ(record.response_flags(), 0u);
}

TEST_F(ProxyServerTest, MalformedRequestIs400AndOversizedHeadersAre431) {
  StartProxy(upstream_.port(), absl::Seconds(15), 1.0, /*max_body_bytes=*/1 << 20);
  const std::string bad = testing::RawExchange(server_->outbound_port(), "GARBAGE\r\n\r\n");
  EXPECT_TRUE(bad.starts_with("HTTP/1.1 400")) << bad;
  const std::string huge = testing::RawExchange(
      server_->outbound_port(),
      "GET / HTTP/1.1\r\nHost: backend\r\nX-Big: " + std::string(70 * 1024, 'a') + "\r\n\r\n");
  EXPECT_TRUE(huge.starts_with("HTTP/1.1 431")) << huge.substr(0, 100);
  const std::string too_long = testing::RawExchange(
      server_->outbound_port(),
      "POST / HTTP/1.1\r\nHost: backend\r\nContent-Length: 999999999999\r\n\r\nabc");
  EXPECT_TRUE(too_long.starts_with("HTTP/1.1 413")) << too_long.substr(0, 100);
  auto records = sink_.Wait(3);
  ASSERT_EQ(records.size(), 3u);
  EXPECT_EQ(records[0].response_code(), 400u);
  EXPECT_EQ(records[0].response_flags(),
            uint64_t{1} << meshtel::v1::RESPONSE_FLAG_DOWNSTREAM_PROTOCOL_ERROR);
  EXPECT_EQ(records[1].response_code(), 431u);
  EXPECT_EQ(records[2].response_code(), 413u);
  // The proxy still serves.
  EXPECT_EQ(testing::HttpGet(server_->outbound_port(), "/echo", {{"Host", "backend"}}).status, 200);
}

TEST_F(ProxyServerTest, HeadsOfEverySizeOnOneConnectionArriveWholeAndOverTheLimitAre431) {
  // A connection's fields live in one arena, made free again before each request: requests of
  // every head size on one keep-alive connection must reach the upstream with all their fields,
  // none of an earlier request's, and a head over the 60 KiB limit still gets 431.
  StartProxy(upstream_.port());
  asio::io_context io_context;
  tcp::socket socket(io_context);
  socket.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), server_->outbound_port()));
  beast::flat_buffer buffer;
  struct Shape {
    size_t fields;
    size_t value_size;
  };
  const std::vector<Shape> shapes = {{0, 0},   {1200, 24}, {2, 3},   {1, 58 * 1024},
                                     {40, 80}, {0, 0},     {600, 60}};
  for (size_t i = 0; i < shapes.size(); ++i) {
    http::request<http::string_body> request{http::verb::get, "/echo", 11};
    request.set(http::field::host, "backend.shop");
    const std::string tag = "r" + std::to_string(i) + "-";
    for (size_t f = 0; f < shapes[i].fields; ++f) {
      request.set("x-f" + std::to_string(f),
                  tag + std::string(shapes[i].value_size, static_cast<char>('a' + f % 26)));
    }
    const auto response = Exchange(socket, buffer, request);
    ASSERT_EQ(response.result_int(), 200u) << "request " << i;
    ASSERT_TRUE(response.keep_alive());
    const std::string& echo = response.body();
    for (size_t f = 0; f < shapes[i].fields; ++f) {
      ASSERT_EQ(Header(echo, "x-f" + std::to_string(f)),
                tag + std::string(shapes[i].value_size, static_cast<char>('a' + f % 26)))
          << "request " << i << " field " << f;
    }
    // Nothing of the request before (which may have had more fields).
    EXPECT_EQ(Header(echo, "x-f" + std::to_string(shapes[i].fields)), "") << "request " << i;
    EXPECT_EQ(Header(echo, "Host"), "backend.shop");
    EXPECT_EQ(Header(echo, "x-request-id").size(), 36u);
  }
  // Over the limit, on the same connection: 431, and the connection closes.
  const std::string over =
      "GET /echo HTTP/1.1\r\nHost: backend.shop\r\nx-big: " + std::string(60 * 1024, 'z') +
      "\r\n\r\n";
  asio::write(socket, asio::buffer(over));
  http::response<http::string_body> refused;
  http::read(socket, buffer, refused);
  EXPECT_EQ(refused.result_int(), 431u);
  EXPECT_FALSE(refused.keep_alive());
  const auto records = sink_.Wait(shapes.size() + 1);
  ASSERT_EQ(records.size(), shapes.size() + 1);
  EXPECT_EQ(records.back().response_code(), 431u);
  EXPECT_EQ(upstream_.connections(), 1);
}

TEST_F(ProxyServerTest, AbsoluteFormTargetIsRoutedByItsHost) {
  StartProxy(upstream_.port());
  testing::HttpResult result =
      testing::HttpGet(server_->outbound_port(), "http://backend.shop.svc.cluster.local/echo?x=1",
                       {{"Host", "ignored"}});
  ASSERT_EQ(result.status, 200);
  EXPECT_EQ(Header(result.body, "Host"), "backend.shop.svc.cluster.local");
  EXPECT_EQ(sink_.Wait(1)[0].path(), "/echo?x=1");
}

TEST_F(ProxyServerTest, InboundTakesPeerIdentityAndStripsIt) {
  StartProxy(upstream_.port());
  meshtel::v1::WorkloadIdentity caller;
  caller.set_workload("checkout");
  caller.set_namespace_("shop");
  testing::HttpResult result =
      testing::HttpGet(server_->inbound_port(), "/echo",
                       {{"Host", "frontend"},
                        {"x-envoy-peer-metadata", EncodePeerMetadata(caller)},
                        {"x-envoy-peer-metadata-id", "checkout.shop"}});
  ASSERT_EQ(result.status, 200);
  EXPECT_EQ(Header(result.body, "x-envoy-peer-metadata"), "");  // the app never sees it
  meshtel::v1::WorkloadIdentity answered;
  ASSERT_TRUE(DecodePeerMetadata(result.headers["x-envoy-peer-metadata"], answered));
  EXPECT_EQ(answered.workload(), "frontend");
  auto record = sink_.Wait(1)[0];
  EXPECT_EQ(record.reporter(), meshtel::v1::REPORTER_DESTINATION);
  EXPECT_EQ(record.source().workload(), "checkout");
  EXPECT_EQ(record.destination().workload(), "frontend");
  EXPECT_EQ(record.destination_service().host(), "frontend.shop.svc.cluster.local");

  // A caller outside the mesh gets no identity back.
  testing::HttpResult plain = testing::HttpGet(server_->inbound_port(), "/echo");
  EXPECT_EQ(plain.headers.count("x-envoy-peer-metadata"), 0u);
}

TEST_F(ProxyServerTest, TraceContinuesUnderANewSpanPerHop) {
  StartProxy(upstream_.port());
  const std::string trace = "4bf92f3577b34da6a3ce929d0e0e4736";
  const std::string caller_span = "00f067aa0ba902b7";
  testing::HttpResult result =
      testing::HttpGet(server_->outbound_port(), "/echo",
                       {{"Host", "backend"},
                        {"traceparent", "00-" + trace + "-" + caller_span + "-01"},
                        {"tracestate", "vendor=1"},
                        {"b3", "11111111111111111111111111111111-2222222222222222-0"}});
  ASSERT_EQ(result.status, 200);
  auto record = sink_.Wait(1)[0];
  const std::string span = ToHex(reinterpret_cast<const uint8_t*>(record.span_id().data()), 8);
  EXPECT_EQ(ToHex(reinterpret_cast<const uint8_t*>(record.trace_id().data()), 16), trace);
  EXPECT_EQ(ToHex(reinterpret_cast<const uint8_t*>(record.parent_span_id().data()), 8),
            caller_span);
  EXPECT_NE(span, caller_span);
  EXPECT_TRUE(record.sampled());
  // Upstream sees this hop's span as the parent, in W3C and B3 multi; the stale single b3 is gone.
  EXPECT_EQ(Header(result.body, "traceparent"), "00-" + trace + "-" + span + "-01");
  EXPECT_EQ(Header(result.body, "tracestate"), "vendor=1");
  EXPECT_EQ(Header(result.body, "x-b3-traceid"), trace);
  EXPECT_EQ(Header(result.body, "x-b3-spanid"), span);
  EXPECT_EQ(Header(result.body, "x-b3-parentspanid"), caller_span);
  EXPECT_EQ(Header(result.body, "x-b3-sampled"), "1");
  EXPECT_EQ(Header(result.body, "b3"), "");
  EXPECT_EQ(server_->stats().invalid_trace_contexts.load(), 0u);
}

TEST_F(ProxyServerTest, InvalidTraceContextStartsANewTraceAndIsCounted) {
  StartProxy(upstream_.port(), absl::Seconds(15), /*sampling_percentage=*/100);
  testing::HttpResult result =
      testing::HttpGet(server_->outbound_port(), "/echo",
                       {{"Host", "backend"},
                        {"traceparent", "00-00000000000000000000000000000000-00f067aa0ba902b7-01"},
                        {"tracestate", "dropped=1"}});
  ASSERT_EQ(result.status, 200);
  auto record = sink_.Wait(1)[0];
  EXPECT_EQ(server_->stats().invalid_trace_contexts.load(), 1u);
  EXPECT_EQ(record.trace_id().size(), 16u);
  EXPECT_NE(record.trace_id(), std::string(16, '\0'));
  EXPECT_EQ(record.parent_span_id(), "");
  EXPECT_TRUE(record.sampled());  // 100% random sampling
  EXPECT_EQ(Header(result.body, "tracestate"), "");
  EXPECT_TRUE(Header(result.body, "traceparent").ends_with("-01"));
}

TEST_F(ProxyServerTest, NoIncomingDecisionSamplesAtTheConfiguredRate) {
  StartProxy(upstream_.port(), absl::Seconds(15), /*sampling_percentage=*/0);
  testing::HttpResult result =
      testing::HttpGet(server_->outbound_port(), "/echo", {{"Host", "backend"}});
  ASSERT_EQ(result.status, 200);
  EXPECT_FALSE(sink_.Wait(1)[0].sampled());
  EXPECT_TRUE(Header(result.body, "traceparent").ends_with("-00"));  // decision still propagates
  testing::HttpResult forced = testing::HttpGet(server_->outbound_port(), "/echo",
                                                {{"Host", "backend"}, {"x-client-trace-id", "1"}});
  ASSERT_EQ(forced.status, 200);
  EXPECT_TRUE(sink_.Wait(2)[1].sampled());
}

// A ProxyPolicy side with sampling `percent` (< 0: unset).
meshtel::v1::SidePolicy Side(double percent, bool report = true) {
  meshtel::v1::SidePolicy side;
  if (percent >= 0) side.set_random_sampling_percentage(percent);
  side.set_report(report);
  return side;
}

TEST_F(ProxyServerTest, PolicySamplingAppliesPerListenerAndChangesWithoutRestart) {
  io_threads_ = 1;
  policy_ = std::make_unique<PolicyHolder>(std::make_shared<ActivePolicy>(
      ActivePolicy{.outbound = {.sampling_percentage = 0}, .inbound = {.sampling_percentage = 0}}));
  StartProxy(upstream_.port(), absl::Seconds(15), /*sampling_percentage=*/0);
  ASSERT_EQ(testing::HttpGet(server_->outbound_port(), "/echo", {{"Host", "backend"}}).status, 200);
  EXPECT_FALSE(sink_.Wait(1)[0].sampled());

  meshtel::v1::ProxyPolicy pushed;
  *pushed.mutable_outbound() = Side(100);
  ASSERT_TRUE(ValidateProxyPolicy(pushed, config_).ok());
  policy_->Install(CompilePolicy(pushed, "v2", config_, [](const char*) { return nullptr; }));
  ASSERT_EQ(testing::HttpGet(server_->outbound_port(), "/echo", {{"Host", "backend"}}).status, 200);
  EXPECT_TRUE(sink_.Wait(2)[1].sampled());
  // The inbound side is unset in the policy: the config's 0% stands.
  ASSERT_EQ(testing::HttpGet(server_->inbound_port(), "/echo").status, 200);
  const auto records = sink_.Wait(3);
  ASSERT_EQ(records.size(), 3u);
  EXPECT_EQ(records[2].reporter(), meshtel::v1::REPORTER_DESTINATION);
  EXPECT_FALSE(records[2].sampled());
}

TEST_F(ProxyServerTest, PolicyCustomTagsAndCapturedHeadersAreAddedToRecords) {
  capture_request_headers_ = {"x-tenant"};
  policy_ = std::make_unique<PolicyHolder>(std::make_shared<ActivePolicy>());
  StartProxy(upstream_.port());
  meshtel::v1::ProxyPolicy pushed;
  *pushed.mutable_outbound() = Side(-1);
  auto* tag = pushed.mutable_outbound()->add_custom_tags();
  tag->set_name("tier");
  tag->set_literal("gold");
  tag = pushed.mutable_outbound()->add_custom_tags();
  tag->set_name("user");
  tag->set_header("x-user");
  tag->set_default_value("anonymous");
  tag = pushed.mutable_outbound()->add_custom_tags();
  tag->set_name("pod");
  tag->set_environment("MESHTEL_TEST_POD");
  tag->set_default_value("no-pod");
  tag = pushed.mutable_outbound()->add_custom_tags();
  tag->set_name("team");
  tag->set_header("x-team");  // absent, no default: no tag
  pushed.add_capture_request_headers("x-user");
  pushed.add_capture_request_headers("x-tenant");
  ASSERT_TRUE(ValidateProxyPolicy(pushed, config_).ok());
  policy_->Install(CompilePolicy(pushed, "v1", config_, [](const char* name) -> const char* {
    return std::string_view(name) == "MESHTEL_TEST_POD" ? "pod-7" : nullptr;
  }));

  ASSERT_EQ(testing::HttpGet(server_->outbound_port(), "/echo",
                             {{"Host", "backend"}, {"x-user", "ada"}, {"x-tenant", "t1"}})
                .status,
            200);
  ASSERT_EQ(testing::HttpGet(server_->outbound_port(), "/echo", {{"Host", "backend"}}).status, 200);
  const auto records = sink_.Wait(2);
  ASSERT_EQ(records.size(), 2u);
  const auto tags = [](const meshtel::v1::RequestRecord& record) {
    std::vector<std::string> out;
    for (const auto& tag : record.custom_tags()) out.push_back(tag.name() + "=" + tag.value());
    return out;
  };
  EXPECT_EQ(tags(records[0]), (std::vector<std::string>{"tier=gold", "user=ada", "pod=pod-7"}));
  EXPECT_EQ(tags(records[1]),
            (std::vector<std::string>{"tier=gold", "user=anonymous", "pod=pod-7"}));
  // The config's header first, then the policy's.
  ASSERT_EQ(records[0].captured_headers_size(), 2);
  EXPECT_EQ(records[0].captured_headers(0).name(), "x-tenant");
  EXPECT_EQ(records[0].captured_headers(1).name(), "x-user");
  EXPECT_EQ(records[0].captured_headers(1).value(), "ada");
  // The inbound side has no tags.
  ASSERT_EQ(testing::HttpGet(server_->inbound_port(), "/echo").status, 200);
  EXPECT_EQ(sink_.Wait(3)[2].custom_tags_size(), 0);
}

TEST_F(ProxyServerTest, PolicyReportOffSendsNoRecordForThatListener) {
  policy_ = std::make_unique<PolicyHolder>(std::make_shared<ActivePolicy>());
  StartProxy(upstream_.port());
  meshtel::v1::ProxyPolicy pushed;
  *pushed.mutable_inbound() = Side(-1, /*report=*/false);
  *pushed.mutable_outbound() = Side(-1);
  policy_->Install(CompilePolicy(pushed, "v1", config_, [](const char*) { return nullptr; }));
  ASSERT_EQ(testing::HttpGet(server_->inbound_port(), "/echo").status, 200);
  ASSERT_TRUE(testing::WaitFor([&] { return server_->stats().inbound.requests.load() == 1; },
                               std::chrono::seconds(10)));
  ASSERT_EQ(testing::HttpGet(server_->outbound_port(), "/echo", {{"Host", "backend"}}).status, 200);
  const auto records = sink_.Wait(1);
  ASSERT_EQ(records.size(), 1u);  // the inbound request was counted but not reported
  EXPECT_EQ(records[0].reporter(), meshtel::v1::REPORTER_SOURCE);
}

// Peak resident memory of this process (VmHWM), in bytes.
uint64_t PeakRssBytes() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.starts_with("VmHWM:")) return std::stoull(line.substr(6)) * 1024;
  }
  return 0;
}

TEST_F(ProxyServerTest, StreamsLargeChunkedBodiesBothWaysInBoundedMemory) {
  StartProxy(upstream_.port());
  constexpr uint64_t kBytes = 96ull << 20;
  const uint64_t peak_before = PeakRssBytes();

  // Upload: the client sends chunks from one small buffer; the upstream only counts.
  asio::io_context io_context;
  tcp::socket socket(io_context);
  socket.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), server_->outbound_port()));
  asio::write(socket, asio::buffer(std::string("POST /upload HTTP/1.1\r\nHost: backend\r\n"
                                               "Transfer-Encoding: chunked\r\n\r\n")));
  const std::string piece(64 * 1024, 'u');
  char size_line[32];
  std::snprintf(size_line, sizeof(size_line), "%zx\r\n", piece.size());
  for (uint64_t sent = 0; sent < kBytes; sent += piece.size()) {
    asio::write(socket,
                std::array<asio::const_buffer, 3>{asio::buffer(size_line, strlen(size_line)),
                                                  asio::buffer(piece), asio::buffer("\r\n", 2)});
  }
  asio::write(socket, asio::buffer(std::string("0\r\n\r\n")));
  beast::flat_buffer buffer;
  http::response<http::string_body> upload_response;
  http::read(socket, buffer, upload_response);
  EXPECT_EQ(upload_response.result_int(), 200u);
  EXPECT_EQ(upload_response.body(), "received: " + std::to_string(kBytes) + "\n");

  // Download on the same connection: the client counts and discards.
  http::request<http::empty_body> request{http::verb::get,
                                          "/download?bytes=" + std::to_string(kBytes), 11};
  request.set(http::field::host, "backend");
  http::write(socket, request);
  http::response_parser<http::buffer_body> parser;
  parser.body_limit(std::numeric_limits<uint64_t>::max());
  http::read_header(socket, buffer, parser);
  EXPECT_TRUE(parser.get().chunked());
  uint64_t received = 0;
  char chunk[64 * 1024];
  while (!parser.is_done()) {
    parser.get().body().data = chunk;
    parser.get().body().size = sizeof(chunk);
    beast::error_code error;
    http::read(socket, buffer, parser, error);
    if (error == http::error::need_buffer) error = {};
    ASSERT_FALSE(error) << error.message();
    received += sizeof(chunk) - parser.get().body().size;
  }
  EXPECT_EQ(received, kBytes);

  auto records = sink_.Wait(2);
  ASSERT_EQ(records.size(), 2u);
  EXPECT_GT(records[0].request_bytes(), kBytes);  // body plus chunk framing and headers
  EXPECT_GT(records[1].response_bytes(), kBytes);
  EXPECT_TRUE(records[1].phases().upstream_connection_reused());
  // Nothing held a whole body: 2 × 96 MiB went through while the peak grew far less.
  EXPECT_LT(PeakRssBytes() - peak_before, 32ull << 20);
}

TEST_F(ProxyServerTest, ShutdownStopsAccepting) {
  StartProxy(upstream_.port());
  const uint16_t port = server_->outbound_port();
  server_->Shutdown();
  EXPECT_EQ(testing::HttpGet(port, "/echo", {{"Host", "backend"}}).status, 0);
}

// Graceful drain: after Shutdown() stops accepting, a request in flight is answered if it ends
// within drain_timeout, and reported; one still running at the deadline is cut off.
TEST_F(ProxyServerTest, ShutdownLetsARequestInFlightFinishWithinTheDrainTimeout) {
  drain_timeout_ = absl::Seconds(30);
  StartProxy(upstream_.port());
  const testing::HttpResult slow = SlowRequestAcrossShutdown();
  EXPECT_EQ(slow.status, 200) << slow.error;
  auto records = sink_.Wait(1);
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].path(), "/slow");
  EXPECT_EQ(records[0].response_code(), 200u);
}

TEST_F(ProxyServerTest, ARequestStillInFlightAtTheDrainTimeoutIsCutOff) {
  drain_timeout_ = absl::Milliseconds(200);
  StartProxy(upstream_.port());
  EXPECT_EQ(SlowRequestAcrossShutdown().status, 0);  // no response
}

TEST_F(ProxyServerTest, PoolsUpstreamConnectionsAcrossDownstreamConnections) {
  io_threads_ = 1;  // one pool
  StartProxy(upstream_.port());
  for (int i = 0; i < 3; ++i) {
    // A new downstream connection each time, closed after its response.
    testing::HttpResult result = testing::HttpGet(server_->outbound_port(), "/echo",
                                                  {{"Host", "backend"}, {"Connection", "close"}});
    ASSERT_EQ(result.status, 200) << result.error;
  }
  auto records = sink_.Wait(3);
  ASSERT_EQ(records.size(), 3u);
  EXPECT_EQ(upstream_.connections(), 1);
  EXPECT_TRUE(records[2].phases().upstream_connection_reused());
  EXPECT_EQ(server_->upstream_connections_open(), 1);
  EXPECT_EQ(server_->upstream_connections_idle(), 1);
}

TEST_F(ProxyServerTest, IdleUpstreamConnectionsAreClosedAfterTheIdleTimeout) {
  upstream_config_.idle_timeout = absl::Milliseconds(200);
  StartProxy(upstream_.port());
  ASSERT_EQ(testing::HttpGet(server_->outbound_port(), "/echo", {{"Host", "backend"}}).status, 200);
  sink_.Wait(1);
  EXPECT_TRUE(testing::WaitFor([&] { return server_->upstream_connections_open() == 0; },
                               std::chrono::seconds(10)));
  // The next request opens a new connection.
  ASSERT_EQ(testing::HttpGet(server_->outbound_port(), "/echo", {{"Host", "backend"}}).status, 200);
  EXPECT_FALSE(sink_.Wait(2)[1].phases().upstream_connection_reused());
  EXPECT_EQ(upstream_.connections(), 2);
}

TEST_F(ProxyServerTest, FullPoolIs503WithUOAfterTheQueueTimeout) {
  upstream_config_.max_connections_per_destination = 1;
  upstream_config_.queue_timeout = absl::Milliseconds(100);
  StartProxy(upstream_.port());
  // /slow holds the only connection for 2 s.
  std::thread slow([&] {
    EXPECT_EQ(testing::HttpGet(server_->outbound_port(), "/slow", {{"Host", "backend"}}).status,
              200);
  });
  ASSERT_TRUE(testing::WaitFor([&] { return server_->upstream_connections_open() == 1; },
                               std::chrono::seconds(10)));
  testing::HttpResult result =
      testing::HttpGet(server_->outbound_port(), "/echo", {{"Host", "backend"}});
  slow.join();
  EXPECT_EQ(result.status, 503);
  EXPECT_NE(result.body.find("overflow"), std::string::npos) << result.body;
  auto records = sink_.Wait(2);
  ASSERT_EQ(records.size(), 2u);
  const auto& overflowed = records[0].path() == "/echo" ? records[0] : records[1];
  EXPECT_EQ(overflowed.response_flags(),
            uint64_t{1} << meshtel::v1::RESPONSE_FLAG_UPSTREAM_OVERFLOW);
  EXPECT_EQ(server_->stats().outbound.flagged[meshtel::v1::RESPONSE_FLAG_UPSTREAM_OVERFLOW].load(),
            1u);
  // Once the connection is back, requests flow again.
  EXPECT_EQ(testing::HttpGet(server_->outbound_port(), "/echo", {{"Host", "backend"}}).status, 200);
}

TEST_F(ProxyServerTest, UpgradeBecomesARawTunnelAfter101) {
  StartProxy(upstream_.port());
  asio::io_context io_context;
  tcp::socket socket(io_context);
  socket.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), server_->outbound_port()));
  const timeval timeout{10, 0};
  ::setsockopt(socket.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  // Raw bytes right behind the request head must reach the upstream too.
  asio::write(socket, asio::buffer(std::string("GET /upgrade HTTP/1.1\r\nHost: backend\r\n"
                                               "Connection: Upgrade\r\nUpgrade: echo\r\n\r\n"
                                               "early-bytes|")));
  beast::flat_buffer buffer;
  http::response_parser<http::empty_body> head;
  beast::error_code error;
  http::read_header(socket, buffer, head, error);
  ASSERT_FALSE(error) << error.message();
  EXPECT_EQ(head.get().result_int(), 101u);
  EXPECT_EQ(head.get()[http::field::upgrade], "echo");
  asio::write(socket, asio::buffer(std::string("\x00\x01"
                                               "binary"
                                               "\xff",
                                               9)));
  std::string echoed(static_cast<const char*>(buffer.data().data()), buffer.size());
  char data[256];
  while (echoed.size() < 21) {
    const size_t got = socket.read_some(asio::buffer(data), error);
    if (error) break;
    echoed.append(data, got);
  }
  EXPECT_EQ(echoed, std::string("early-bytes|\x00\x01"
                                "binary"
                                "\xff",
                                21));
  socket.shutdown(tcp::socket::shutdown_send);
  // The upstream closes its side in turn: the tunnel ends and the request is recorded.
  while (!error) socket.read_some(asio::buffer(data), error);
  EXPECT_EQ(error, asio::error::eof);
  auto records = sink_.Wait(1);
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].response_code(), 101u);
  EXPECT_GE(records[0].request_bytes(), 21u);
  EXPECT_GE(records[0].response_bytes(), 21u);
}

TEST_F(ProxyServerTest, ChunkTrailersPassBothWays) {
  StartProxy(upstream_.port());
  // Request trailers reach the upstream (the echo lists every field it read, trailers last).
  std::string reply = testing::RawExchange(
      server_->outbound_port(),
      "POST /echo HTTP/1.1\r\nHost: backend\r\nTransfer-Encoding: chunked\r\n"
      "Trailer: x-sum\r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\nx-sum: 42\r\n\r\n");
  EXPECT_NE(reply.find("x-sum: 42\n"), std::string::npos) << reply;
  EXPECT_NE(reply.find("body: abc\n"), std::string::npos) << reply;
  // Response trailers reach the client after the last chunk.
  reply =
      testing::RawExchange(server_->outbound_port(),
                           "GET /trailers HTTP/1.1\r\nHost: backend\r\nConnection: close\r\n\r\n");
  EXPECT_NE(reply.find("5\r\nhello\r\n0\r\nx-checksum: abc\r\ngrpc-status: 0\r\n\r\n"),
            std::string::npos)
      << reply;
}

TEST_F(ProxyServerTest, OversizedTrailersAndBadResponseHeadsAreRefusedAndTheProxyKeepsServing) {
  StartProxy(upstream_.port());
  const std::string chunked_head =
      "POST /echo HTTP/1.1\r\nHost: backend\r\nTransfer-Encoding: chunked\r\n"
      "Connection: close\r\n\r\n3\r\nabc\r\n0\r\n";
  // One request trailer field over Beast's 64 KiB per field (it would throw), then many small
  // ones over the read buffer's bound: both refused like oversized request headers.
  std::string reply =
      testing::RawExchange(server_->outbound_port(),
                           chunked_head + "x-big: " + std::string(100 * 1024, 'a') + "\r\n\r\n");
  EXPECT_TRUE(reply.starts_with("HTTP/1.1 431")) << reply.substr(0, 100);
  std::string many;
  for (int i = 0; i < 3000; ++i)
    many += "x-t" + std::to_string(i) + ": " + std::string(100, 'b') + "\r\n";
  reply = testing::RawExchange(server_->outbound_port(), chunked_head + many + "\r\n");
  EXPECT_TRUE(reply.starts_with("HTTP/1.1 431")) << reply.substr(0, 100);
  // A response head of 20 KiB passes; one over 60 KiB, or one that is not HTTP, is the upstream's
  // protocol error: 502 UPE.
  const auto status_line = [this](const std::string& target) {
    const std::string answer = testing::RawExchange(
        server_->outbound_port(),
        "GET " + target + " HTTP/1.1\r\nHost: backend\r\nConnection: close\r\n\r\n");
    return answer.substr(0, answer.find("\r\n"));
  };
  EXPECT_EQ(status_line("/big-head?kib=20"), "HTTP/1.1 200 OK");
  EXPECT_EQ(status_line("/big-head?kib=70"), "HTTP/1.1 502 Bad Gateway");
  EXPECT_EQ(status_line("/garbage"), "HTTP/1.1 502 Bad Gateway");
  // A response trailer over the bound: the client sees the response cut off after its body.
  reply = testing::RawExchange(
      server_->outbound_port(),
      "GET /big-trailer HTTP/1.1\r\nHost: backend\r\nConnection: close\r\n\r\n");
  EXPECT_TRUE(reply.starts_with("HTTP/1.1 200")) << reply.substr(0, 100);
  EXPECT_EQ(reply.find("0\r\n\r\n"), std::string::npos) << reply.substr(0, 300);
  const auto records = sink_.Wait(6);
  ASSERT_EQ(records.size(), 6u);
  const uint64_t dpe = uint64_t{1} << meshtel::v1::RESPONSE_FLAG_DOWNSTREAM_PROTOCOL_ERROR;
  const uint64_t upe = uint64_t{1} << meshtel::v1::RESPONSE_FLAG_UPSTREAM_PROTOCOL_ERROR;
  EXPECT_EQ(records[0].response_code(), 431u);
  EXPECT_EQ(records[0].response_flags(), dpe);
  EXPECT_EQ(records[1].response_code(), 431u);
  EXPECT_EQ(records[2].response_code(), 200u);
  EXPECT_EQ(records[3].response_code(), 502u);
  EXPECT_EQ(records[3].response_flags(), upe);
  EXPECT_EQ(records[4].response_code(), 502u);
  EXPECT_EQ(records[4].response_flags(), upe);
  EXPECT_EQ(records[5].response_code(), 200u);
  EXPECT_EQ(records[5].response_flags(), upe);
  // The proxy still serves.
  EXPECT_EQ(testing::HttpGet(server_->outbound_port(), "/echo", {{"Host", "backend"}}).status, 200);
}

TEST_F(ProxyServerTest, ClientGoneBeforeTheResponseIsDCWithNoCode) {
  StartProxy(upstream_.port());
  {
    asio::io_context io_context;
    tcp::socket socket(io_context);
    socket.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), server_->outbound_port()));
    asio::write(socket, asio::buffer(std::string("GET /slow HTTP/1.1\r\nHost: backend\r\n\r\n")));
    // Closed while the upstream takes its 2 s.
  }
  auto records = sink_.Wait(1);
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].response_flags(),
            uint64_t{1} << meshtel::v1::RESPONSE_FLAG_DOWNSTREAM_CONNECTION_TERMINATION);
  EXPECT_EQ(records[0].response_code(), 0u);
  EXPECT_EQ(records[0].response_bytes(), 0u);
  // The connection that still held the unread response was not pooled.
  EXPECT_EQ(server_->upstream_connections_open(), 0);
}

TEST_F(ProxyServerTest, ExpectContinueIsAnsweredAndTheBodyForwarded) {
  StartProxy(upstream_.port());
  asio::io_context io_context;
  tcp::socket socket(io_context);
  socket.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), server_->outbound_port()));
  asio::write(socket, asio::buffer(std::string("POST /echo HTTP/1.1\r\nHost: backend\r\n"
                                               "Content-Length: 5\r\nExpect: 100-continue\r\n"
                                               "Connection: close\r\n\r\n")));
  // The client holds its body back until it is told to go on.
  beast::flat_buffer buffer;
  http::response_parser<http::empty_body> interim;
  http::read_header(socket, buffer, interim);
  EXPECT_EQ(interim.get().result(), http::status::continue_);
  asio::write(socket, asio::buffer(std::string("hello")));
  http::response<http::string_body> response;
  http::read(socket, buffer, response);
  EXPECT_EQ(response.result(), http::status::ok);
  EXPECT_NE(response.body().find("body: hello\n"), std::string::npos) << response.body();
  // The proxy answered the expectation itself: the upstream never sees it.
  EXPECT_EQ(Header(response.body(), "Expect"), "") << response.body();
  const auto record = sink_.Wait(1)[0];
  EXPECT_EQ(record.response_code(), 200u);
  EXPECT_EQ(record.response_flags(), 0u);
}

TEST_F(ProxyServerTest, UpstreamClosingBeforeTheResponseIs503WithUC) {
  StartProxy(upstream_.port());
  testing::HttpResult result =
      testing::HttpGet(server_->outbound_port(), "/reset", {{"Host", "backend"}});
  EXPECT_EQ(result.status, 503);
  EXPECT_NE(result.body.find("connection termination"), std::string::npos) << result.body;
  const auto record = sink_.Wait(1)[0];
  EXPECT_EQ(record.response_flags(),
            uint64_t{1} << meshtel::v1::RESPONSE_FLAG_UPSTREAM_CONNECTION_TERMINATION);
  EXPECT_EQ(record.response_code(), 503u);
  EXPECT_EQ(record.response_code_details(),
            "upstream_reset_before_response_started{connection_termination}");
}

TEST_F(ProxyServerTest, UpstreamClosingMidBodyClosesTheClientAndIsUC) {
  StartProxy(upstream_.port());
  // The client gets the head and the bytes that came, then a close: it can tell the body is short.
  const std::string reply = testing::RawExchange(server_->outbound_port(),
                                                 "GET /truncate HTTP/1.1\r\nHost: backend\r\n\r\n");
  EXPECT_TRUE(reply.starts_with("HTTP/1.1 200 OK\r\n")) << reply;
  EXPECT_NE(reply.find("Content-Length: 100\r\n"), std::string::npos) << reply;
  EXPECT_TRUE(reply.ends_with("\r\n\r\n0123456789")) << reply;
  const auto record = sink_.Wait(1)[0];
  EXPECT_EQ(record.response_code(), 200u);
  EXPECT_EQ(record.response_flags(),
            uint64_t{1} << meshtel::v1::RESPONSE_FLAG_UPSTREAM_CONNECTION_TERMINATION);
  EXPECT_EQ(server_->upstream_connections_open(), 0);
}

}  // namespace
}  // namespace meshtel::proxy
