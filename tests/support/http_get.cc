#include "tests/support/http_get.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <utility>

#include "boost/asio.hpp"
#include "boost/beast.hpp"

namespace meshtel::testing {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

namespace {

// Runs `body` (a coroutine lambda, kept alive here) on a fresh io_context to its end. The
// operations in it carry their own deadlines (tcp_stream::expires_after), so this always ends.
template <class Body>
void RunToEnd(Body body) {
  asio::io_context io_context;
  asio::co_spawn(io_context, body(io_context.get_executor()), asio::detached);
  io_context.run();
}

const asio::ip::tcp::endpoint Loopback(uint16_t port) {
  return asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), port);
}

}  // namespace

HttpResult HttpRequest(uint16_t port, const std::string& method, const std::string& target,
                       const std::vector<std::pair<std::string, std::string>>& headers,
                       const std::string& body) {
  HttpResult result;
  const auto exchange = [&](asio::any_io_executor executor) -> asio::awaitable<void> {
    beast::tcp_stream stream(executor);
    beast::error_code error;
    stream.expires_after(std::chrono::seconds(30));
    co_await stream.async_connect(Loopback(port), asio::redirect_error(asio::use_awaitable, error));
    if (error) {
      result.error = error.message();
      co_return;
    }
    http::request<http::string_body> request{http::string_to_verb(method), target, 11};
    request.set(http::field::host, "127.0.0.1");
    for (const auto& [name, value] : headers) request.set(name, value);
    request.body() = body;
    request.prepare_payload();
    co_await http::async_write(stream, request, asio::redirect_error(asio::use_awaitable, error));
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(1ull << 30);
    if (!error) {
      co_await http::async_read(stream, buffer, parser,
                                asio::redirect_error(asio::use_awaitable, error));
    }
    if (error) {
      result.error = error.message();
      co_return;
    }
    const auto& response = parser.get();
    result.status = static_cast<int>(response.result_int());
    result.body = response.body();
    for (const auto& field : response) {
      std::string name(field.name_string());
      std::transform(name.begin(), name.end(), name.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      result.headers[name] = std::string(field.value());
    }
  };
  RunToEnd(exchange);
  return result;
}

std::string RawExchange(uint16_t port, const std::string& bytes) {
  std::string received;
  const auto exchange = [&](asio::any_io_executor executor) -> asio::awaitable<void> {
    beast::tcp_stream stream(executor);
    beast::error_code error;
    stream.expires_after(std::chrono::seconds(10));
    co_await stream.async_connect(Loopback(port), asio::redirect_error(asio::use_awaitable, error));
    if (error) co_return;
    co_await asio::async_write(stream, asio::buffer(bytes),
                               asio::redirect_error(asio::use_awaitable, error));
    char buffer[4096];
    while (!error) {
      const size_t read = co_await stream.async_read_some(
          asio::buffer(buffer), asio::redirect_error(asio::use_awaitable, error));
      received.append(buffer, read);
    }
  };
  RunToEnd(exchange);
  return received;
}

}  // namespace meshtel::testing
