#include "collector/common/admin_http_server.h"

#include <chrono>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "boost/asio.hpp"
#include "boost/beast.hpp"
#include "collector/common/http_connection.h"
#include "spdlog/spdlog.h"

namespace meshtel::common {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

constexpr size_t kMaxRequestBodyBytes = 64 * 1024;
constexpr auto kIdleTimeout = std::chrono::seconds(60);

}  // namespace

struct AdminHttpServer::Impl {
  asio::io_context io_context{1};
  tcp::acceptor acceptor{io_context};
  absl::flat_hash_map<std::string, AdminHandler> routes;
  absl::flat_hash_set<std::string> quick_routes;
  std::thread thread;
  // Runs the handlers of the other routes, one at a time. Declared after io_context: destroyed
  // (joined) first, while the coroutine frames its handlers read are still alive.
  asio::thread_pool handler_thread{1};

  AdminResponse Dispatch(const AdminRequest& request) {
    auto it = routes.find(request.path);
    // A route ending in '/' also answers every path under it ("/api/traces/" for
    // "/api/traces/<id>").
    for (size_t slash = request.path.rfind('/');
         it == routes.end() && slash != std::string::npos && slash > 0;
         slash = request.path.rfind('/', slash - 1)) {
      it = routes.find(request.path.substr(0, slash + 1));
    }
    if (it == routes.end()) {
      return AdminResponse{.status = 404,
                           .body = absl::StrCat("no such path: ", request.path, "\n")};
    }
    return it->second(request);
  }

  asio::awaitable<void> Serve(tcp::socket socket) {
    beast::error_code endpoint_error;
    const auto peer = socket.remote_endpoint(endpoint_error);
    const bool from_loopback =
        !endpoint_error &&
        (peer.address().is_loopback() ||
         (peer.address().is_v6() && peer.address().to_v6().is_v4_mapped() &&
          asio::ip::make_address_v4(asio::ip::v4_mapped, peer.address().to_v6()).is_loopback()));
    beast::tcp_stream stream(std::move(socket));
    beast::flat_buffer buffer(kMaxHttpReadBufferBytes);
    for (;;) {
      http::request_parser<http::string_body> parser;
      parser.body_limit(kMaxRequestBodyBytes);
      stream.expires_after(kIdleTimeout);
      beast::error_code read_error;
      co_await http::async_read(stream, buffer, parser,
                                asio::redirect_error(asio::use_awaitable, read_error));
      if (read_error == http::error::end_of_stream || read_error == beast::error::timeout ||
          read_error == asio::error::operation_aborted) {
        break;
      }
      http::response<http::string_body> response;
      bool keep_alive = false;
      if (read_error) {
        response.result(read_error == http::error::body_limit ? http::status::payload_too_large
                                                              : http::status::bad_request);
        response.set(http::field::content_type, "text/plain; charset=utf-8");
        response.body() = absl::StrCat("bad request: ", read_error.message(), "\n");
      } else {
        const auto& message = parser.get();
        AdminRequest request;
        request.method = std::string(message.method_string());
        const std::string_view target(message.target().data(), message.target().size());
        const size_t question = target.find('?');
        request.path = std::string(target.substr(0, question));
        if (question != std::string_view::npos) {
          request.query = std::string(target.substr(question + 1));
        }
        request.accept = std::string(message[http::field::accept]);
        request.accept_encoding = std::string(message[http::field::accept_encoding]);
        request.authorization = std::string(message[http::field::authorization]);
        request.from_loopback = from_loopback;
        request.body = message.body();
        AdminResponse reply;
        if (quick_routes.contains(request.path)) {
          reply = Dispatch(request);
        } else {
          reply = co_await asio::co_spawn(
              handler_thread.get_executor(),
              [this, &request]() -> asio::awaitable<AdminResponse> { co_return Dispatch(request); },
              asio::use_awaitable);
        }
        response.result(reply.status);
        response.set(http::field::content_type, reply.content_type);
        if (!reply.content_encoding.empty()) {
          response.set(http::field::content_encoding, reply.content_encoding);
        }
        response.body() = std::move(reply.body);
        keep_alive = message.keep_alive();
        response.version(message.version());
      }
      response.keep_alive(keep_alive);
      response.prepare_payload();
      beast::error_code write_error;
      co_await http::async_write(stream, response,
                                 asio::redirect_error(asio::use_awaitable, write_error));
      if (write_error || !keep_alive) break;
    }
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  }

  asio::awaitable<void> Accept() {
    for (;;) {
      beast::error_code error;
      tcp::socket socket =
          co_await acceptor.async_accept(asio::redirect_error(asio::use_awaitable, error));
      if (error == asio::error::operation_aborted) co_return;
      if (error) {
        spdlog::warn("admin server: accept failed: {}", error.message());
        continue;
      }
      asio::co_spawn(io_context, Serve(std::move(socket)), ConnectionEnd("admin server"));
    }
  }
};

AdminHttpServer::AdminHttpServer(std::unique_ptr<Impl> impl, uint16_t port)
    : impl_(std::move(impl)), port_(port) {}

absl::StatusOr<std::unique_ptr<AdminHttpServer>> AdminHttpServer::Start(
    const HostPort& listen, std::vector<std::pair<std::string, AdminHandler>> routes,
    std::vector<std::string> quick_routes) {
  auto impl = std::make_unique<Impl>();
  for (auto& [path, handler] : routes) impl->routes.emplace(path, std::move(handler));
  for (std::string& path : quick_routes) impl->quick_routes.insert(std::move(path));
  beast::error_code error;
  const auto address = asio::ip::make_address(listen.host, error);
  if (error) {
    return absl::InvalidArgumentError(
        absl::StrCat("admin listen address '", listen.host, "' is not an IP address"));
  }
  const tcp::endpoint endpoint(address, listen.port);
  impl->acceptor.open(endpoint.protocol(), error);
  if (!error) impl->acceptor.set_option(asio::socket_base::reuse_address(true), error);
  if (!error) impl->acceptor.bind(endpoint, error);
  if (!error) impl->acceptor.listen(asio::socket_base::max_listen_connections, error);
  if (error) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", listen.ToString(), ": ", error.message()));
  }
  const uint16_t port = impl->acceptor.local_endpoint().port();
  asio::co_spawn(impl->io_context, impl->Accept(), asio::detached);
  Impl* raw = impl.get();
  impl->thread = std::thread([raw] { raw->io_context.run(); });
  return std::unique_ptr<AdminHttpServer>(new AdminHttpServer(std::move(impl), port));
}

AdminHttpServer::~AdminHttpServer() {
  impl_->io_context.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
  impl_->handler_thread.join();  // after the handler that may be running
}

}  // namespace meshtel::common
