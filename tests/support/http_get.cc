#include "tests/support/http_get.h"

#include <algorithm>
#include <cctype>
#include <chrono>

#include <sys/socket.h>
#include <sys/time.h>

#include "boost/asio.hpp"
#include "boost/beast.hpp"

namespace meshtel::testing {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

HttpResult HttpRequest(uint16_t port, const std::string& method, const std::string& target,
                       const std::vector<std::pair<std::string, std::string>>& headers,
                       const std::string& body) {
  HttpResult result;
  asio::io_context io_context;
  beast::tcp_stream stream(io_context);
  beast::error_code error;
  stream.connect(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), error);
  if (error) {
    result.error = error.message();
    return result;
  }
  const timeval timeout{30, 0};
  setsockopt(stream.socket().native_handle(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  http::request<http::string_body> request{http::string_to_verb(method), target, 11};
  request.set(http::field::host, "127.0.0.1");
  for (const auto& [name, value] : headers) request.set(name, value);
  request.body() = body;
  request.prepare_payload();
  http::write(stream, request, error);
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(1ull << 30);
  if (!error) http::read(stream, buffer, parser, error);
  if (error) {
    result.error = error.message();
    return result;
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
  return result;
}

std::string RawExchange(uint16_t port, const std::string& bytes) {
  asio::io_context io_context;
  beast::tcp_stream stream(io_context);
  beast::error_code error;
  stream.connect(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), error);
  if (error) return "";
  const timeval timeout{10, 0};
  setsockopt(stream.socket().native_handle(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  asio::write(stream.socket(), asio::buffer(bytes), error);
  std::string received;
  char buffer[4096];
  while (!error) {
    const size_t read = stream.socket().read_some(asio::buffer(buffer), error);
    received.append(buffer, read);
  }
  return received;
}

}  // namespace meshtel::testing
