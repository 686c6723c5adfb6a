#include "tests/support/test_http_server.h"

#include <algorithm>
#include <cctype>
#include <chrono>

#include "boost/asio.hpp"
#include "boost/beast.hpp"

namespace meshtel::testing {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

struct TestHttpServer::Impl {
  asio::io_context io_context;
  tcp::acceptor acceptor{io_context};
  Handler handler;
};

namespace {

asio::awaitable<void> Serve(tcp::socket socket, TestHttpServer::Handler& handler,
                            uint64_t connection) {
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

asio::awaitable<void> Accept(TestHttpServer::Impl& impl, std::atomic<uint64_t>& accepted) {
  for (;;) {
    beast::error_code error;
    tcp::socket socket =
        co_await impl.acceptor.async_accept(asio::redirect_error(asio::use_awaitable, error));
    if (error) co_return;
    const uint64_t connection = accepted.fetch_add(1) + 1;
    asio::co_spawn(impl.io_context, Serve(std::move(socket), impl.handler, connection),
                   asio::detached);
  }
}

}  // namespace

TestHttpServer::TestHttpServer(Handler handler) : impl_(std::make_unique<Impl>()) {
  impl_->handler = std::move(handler);
  const tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"), 0);
  impl_->acceptor.open(endpoint.protocol());
  impl_->acceptor.set_option(tcp::acceptor::reuse_address(true));
  impl_->acceptor.bind(endpoint);
  impl_->acceptor.listen();
  port_ = impl_->acceptor.local_endpoint().port();
  asio::co_spawn(impl_->io_context, Accept(*impl_, connections_accepted_), asio::detached);
  thread_ = std::thread([this] { impl_->io_context.run(); });
}

TestHttpServer::~TestHttpServer() {
  impl_->io_context.stop();
  thread_.join();
}

}  // namespace meshtel::testing
