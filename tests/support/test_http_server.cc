#include "tests/support/test_http_server.h"

#include <algorithm>
#include <cctype>
#include <chrono>

#include "boost/asio.hpp"
#include "boost/asio/ssl.hpp"
#include "boost/beast.hpp"
#include "boost/beast/ssl.hpp"

namespace meshtel::testing {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

struct TestHttpServer::Impl {
  asio::io_context io_context;
  tcp::acceptor acceptor{io_context};
  Handler handler;
  std::unique_ptr<ssl::context> tls;  // null: plaintext
};

namespace {

template <class Stream>
asio::awaitable<void> Serve(Stream& socket, TestHttpServer::Handler& handler, uint64_t connection) {
  beast::flat_buffer buffer;
  beast::error_code error;
  for (;;) {
    http::request_parser<http::string_body> parser;
    parser.body_limit(1ull << 30);
    co_await http::async_read(socket, buffer, parser,
                              asio::redirect_error(asio::use_awaitable, error));
    if (error) co_return;
    http::request<http::string_body> request = parser.release();
    TestHttpRequest seen;
    seen.method = std::string(request.method_string());
    seen.target = std::string(request.target());
    for (const auto& field : request) {
      std::string name(field.name_string());
      std::transform(name.begin(), name.end(), name.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      seen.headers[name] = std::string(field.value());
    }
    seen.body = std::move(request.body());
    seen.connection = connection;
    const TestHttpReply reply = handler(seen);
    if (reply.hang) {
      asio::steady_timer never(socket.get_executor(), std::chrono::hours(24));
      co_await never.async_wait(asio::redirect_error(asio::use_awaitable, error));
      co_return;
    }
    http::response<http::string_body> response;
    response.version(11);
    response.result(static_cast<unsigned>(reply.status));
    for (const auto& [name, value] : reply.headers) response.set(name, value);
    response.body() = reply.body;
    response.keep_alive(request.keep_alive());
    response.prepare_payload();
    co_await http::async_write(socket, response, asio::redirect_error(asio::use_awaitable, error));
    if (error || !request.keep_alive() || reply.close_after) co_return;
  }
}

asio::awaitable<void> ServePlain(tcp::socket socket, TestHttpServer::Handler& handler,
                                 uint64_t connection) {
  co_await Serve(socket, handler, connection);
}

asio::awaitable<void> ServeTls(tcp::socket socket, ssl::context& context,
                               TestHttpServer::Handler& handler, uint64_t connection,
                               std::atomic<uint64_t>& handshakes,
                               std::atomic<uint64_t>& handshakes_failed) {
  beast::ssl_stream<tcp::socket> stream(std::move(socket), context);
  beast::error_code error;
  co_await stream.async_handshake(ssl::stream_base::server,
                                  asio::redirect_error(asio::use_awaitable, error));
  if (error) {
    handshakes_failed.fetch_add(1);
    co_return;
  }
  handshakes.fetch_add(1);
  co_await Serve(stream, handler, connection);
}

asio::awaitable<void> Accept(TestHttpServer::Impl& impl, std::atomic<uint64_t>& accepted,
                             std::atomic<uint64_t>& handshakes,
                             std::atomic<uint64_t>& handshakes_failed) {
  for (;;) {
    beast::error_code error;
    tcp::socket socket =
        co_await impl.acceptor.async_accept(asio::redirect_error(asio::use_awaitable, error));
    if (error) co_return;
    const uint64_t connection = accepted.fetch_add(1) + 1;
    if (impl.tls) {
      asio::co_spawn(impl.io_context,
                     ServeTls(std::move(socket), *impl.tls, impl.handler, connection, handshakes,
                              handshakes_failed),
                     asio::detached);
    } else {
      asio::co_spawn(impl.io_context, ServePlain(std::move(socket), impl.handler, connection),
                     asio::detached);
    }
  }
}

std::unique_ptr<ssl::context> MakeServerContext(const TestTlsOptions& tls) {
  auto context = std::make_unique<ssl::context>(ssl::context::tls_server);
  context->use_certificate_chain(asio::buffer(tls.cert_pem));
  context->use_private_key(asio::buffer(tls.key_pem), ssl::context::pem);
  if (!tls.client_ca_pem.empty()) {
    context->add_certificate_authority(asio::buffer(tls.client_ca_pem));
    context->set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert);
  }
  return context;
}

}  // namespace

TestHttpServer::TestHttpServer(Handler handler) : impl_(std::make_unique<Impl>()) {
  impl_->handler = std::move(handler);
  Start();
}

TestHttpServer::TestHttpServer(Handler handler, const std::optional<TestTlsOptions>& tls)
    : impl_(std::make_unique<Impl>()) {
  impl_->handler = std::move(handler);
  if (tls) impl_->tls = MakeServerContext(*tls);
  Start();
}

void TestHttpServer::Start() {
  const tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"), 0);
  impl_->acceptor.open(endpoint.protocol());
  impl_->acceptor.set_option(tcp::acceptor::reuse_address(true));
  impl_->acceptor.bind(endpoint);
  impl_->acceptor.listen();
  port_ = impl_->acceptor.local_endpoint().port();
  asio::co_spawn(impl_->io_context,
                 Accept(*impl_, connections_accepted_, tls_handshakes_, tls_handshakes_failed_),
                 asio::detached);
  thread_ = std::thread([this] { impl_->io_context.run(); });
}

TestHttpServer::~TestHttpServer() {
  impl_->io_context.stop();
  thread_.join();
}

}  // namespace meshtel::testing
