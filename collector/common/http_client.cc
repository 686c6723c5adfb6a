#include "collector/common/http_client.h"

#include <cctype>
#include <charconv>
#include <chrono>
#include <exception>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "boost/asio.hpp"
#include "boost/beast.hpp"

namespace meshtel::common {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

absl::Status UrlError(std::string_view url, std::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("'", std::string(url), "' ", std::string(what)));
}

// What one attempt of a request produced.
struct Outcome {
  absl::Status status;
  HttpResponse response;
  // The attempt failed on a reused connection before any response byte arrived: the server had
  // closed the idle connection, and the request may be sent again on a new one.
  bool stale = false;
};

}  // namespace

std::string HttpUrl::Origin() const {
  if (host.find(':') != std::string::npos) return absl::StrCat("[", host, "]:", port);
  return absl::StrCat(host, ":", port);
}

absl::StatusOr<HttpUrl> ParseHttpUrl(std::string_view url) {
  constexpr std::string_view kScheme = "http://";
  if (url.size() < kScheme.size() || !EqualsIgnoreCase(url.substr(0, kScheme.size()), kScheme)) {
    if (url.size() >= 8 && EqualsIgnoreCase(url.substr(0, 8), "https://")) {
      return UrlError(url, "uses https, which is not supported (no TLS): use http://");
    }
    return UrlError(url, "is not an http:// URL");
  }
  std::string_view rest = url.substr(kScheme.size());
  const size_t authority_end = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, authority_end);
  std::string_view target =
      authority_end == std::string_view::npos ? std::string_view() : rest.substr(authority_end);
  if (target.find('#') != std::string_view::npos) return UrlError(url, "has a fragment");
  if (authority.find('@') != std::string_view::npos) {
    return UrlError(url, "carries credentials, which are not supported in the URL");
  }
  HttpUrl parsed;
  std::string_view port_text;
  if (!authority.empty() && authority.front() == '[') {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) return UrlError(url, "has an unclosed '['");
    parsed.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return UrlError(url, "has text after ']'");
      port_text = after.substr(1);
      if (port_text.empty()) return UrlError(url, "has an empty port");
    }
  } else {
    const size_t colon = authority.find(':');
    parsed.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) {
      port_text = authority.substr(colon + 1);
      if (port_text.empty()) return UrlError(url, "has an empty port");
    }
  }
  if (parsed.host.empty()) return UrlError(url, "has no host");
  if (!port_text.empty()) {
    unsigned value = 0;
    const auto [end, error] =
        std::from_chars(port_text.data(), port_text.data() + port_text.size(), value);
    if (error != std::errc() || end != port_text.data() + port_text.size() || value == 0 ||
        value > 65535) {
      return UrlError(url, "has a port that is not in [1, 65535]");
    }
    parsed.port = static_cast<uint16_t>(value);
  }
  if (target.empty()) {
    parsed.target = "/";
  } else if (target.front() == '?') {
    parsed.target = absl::StrCat("/", std::string(target));
  } else {
    parsed.target = std::string(target);
  }
  return parsed;
}

std::optional<std::string> HttpResponse::Header(std::string_view name) const {
  for (const auto& [header, value] : headers) {
    if (EqualsIgnoreCase(header, name)) return value;
  }
  return std::nullopt;
}

struct HttpClient::State {
  asio::io_context io_context;
  tcp::resolver resolver{io_context};
  tcp::socket socket{io_context};
  beast::flat_buffer buffer;  // bytes read past one response stay here for the next
};

namespace {

// One attempt: connects when the socket is closed, writes the request and reads the response.
// Every failure closes the socket. Parameters are references to objects that outlive the run.
asio::awaitable<void> Exchange(tcp::resolver& resolver, tcp::socket& socket,
                               beast::flat_buffer& buffer, const HttpUrl& origin,
                               const http::request<http::string_body>& request,
                               size_t max_body_bytes, uint64_t& connections_opened,
                               Outcome& outcome) {
  beast::error_code error;
  const auto close = [&] {
    beast::error_code ignored;
    socket.shutdown(tcp::socket::shutdown_both, ignored);
    socket.close(ignored);
  };
  const bool reused = socket.is_open();
  if (!reused) {
    buffer.clear();
    beast::error_code not_literal;
    const asio::ip::address address = asio::ip::make_address(origin.host, not_literal);
    if (!not_literal) {
      co_await socket.async_connect(tcp::endpoint(address, origin.port),
                                    asio::redirect_error(asio::use_awaitable, error));
    } else {
      const tcp::resolver::results_type endpoints =
          co_await resolver.async_resolve(origin.host, std::to_string(origin.port),
                                          asio::redirect_error(asio::use_awaitable, error));
      if (error) {
        outcome.status = absl::UnavailableError(
            absl::StrCat("cannot resolve ", origin.host, ": ", error.message()));
        co_return;
      }
      co_await asio::async_connect(socket, endpoints,
                                   asio::redirect_error(asio::use_awaitable, error));
    }
    if (error) {
      close();
      outcome.status = absl::UnavailableError(
          absl::StrCat("cannot connect to ", origin.Origin(), ": ", error.message()));
      co_return;
    }
    ++connections_opened;
    socket.set_option(tcp::no_delay(true), error);
  }
  co_await http::async_write(socket, request, asio::redirect_error(asio::use_awaitable, error));
  if (error) {
    close();
    outcome.stale = reused;
    outcome.status = absl::UnavailableError(
        absl::StrCat("writing to ", origin.Origin(), " failed: ", error.message()));
    co_return;
  }
  http::response_parser<http::string_body> parser;
  parser.body_limit(max_body_bytes);
  co_await http::async_read_header(socket, buffer, parser,
                                   asio::redirect_error(asio::use_awaitable, error));
  // Boost 1.74's parser does not hold a Content-Length body to body_limit: check it here.
  if (!error && parser.content_length() && *parser.content_length() > max_body_bytes) {
    error = http::error::body_limit;
  }
  if (!error && !parser.is_done()) {
    co_await http::async_read(socket, buffer, parser,
                              asio::redirect_error(asio::use_awaitable, error));
  }
  if (error) {
    outcome.stale = reused && !parser.got_some() &&
                    (error == http::error::end_of_stream || error == asio::error::eof ||
                     error == asio::error::connection_reset || error == asio::error::broken_pipe);
    close();
    outcome.status = absl::UnavailableError(
        absl::StrCat("reading the response from ", origin.Origin(), " failed: ", error.message()));
    co_return;
  }
  http::response<http::string_body> response = parser.release();
  outcome.response.status = static_cast<int>(response.result_int());
  for (const auto& field : response) {
    outcome.response.headers.emplace_back(std::string(field.name_string()),
                                          std::string(field.value()));
  }
  outcome.response.body = std::move(response.body());
  if (!response.keep_alive()) close();
}

}  // namespace

HttpClient::HttpClient(HttpUrl origin, HttpClientOptions options)
    : origin_(std::move(origin)), options_(options), state_(std::make_unique<State>()) {}

HttpClient::~HttpClient() {
  beast::error_code ignored;
  state_->socket.close(ignored);
}

absl::StatusOr<HttpResponse> HttpClient::Post(std::string_view target, const HttpHeaders& headers,
                                              std::string_view body) {
  return Send(/*get=*/false, target, headers, body);
}

absl::StatusOr<HttpResponse> HttpClient::Get(std::string_view target, const HttpHeaders& headers) {
  return Send(/*get=*/true, target, headers, "");
}

absl::StatusOr<HttpResponse> HttpClient::Send(bool get, std::string_view target,
                                              const HttpHeaders& headers, std::string_view body) {
  const auto deadline =
      std::chrono::steady_clock::now() + absl::ToChronoNanoseconds(options_.timeout);
  http::request<http::string_body> request{get ? http::verb::get : http::verb::post,
                                           beast::string_view(target.data(), target.size()), 11};
  request.set(http::field::host, origin_.Origin());
  for (const auto& [name, value] : headers) request.set(name, value);
  request.keep_alive(true);
  if (!get) {
    request.body() = std::string(body);
    request.prepare_payload();
  }

  State& state = *state_;
  for (int attempt = 0;; ++attempt) {
    Outcome outcome;
    bool finished = false;
    state.io_context.restart();
    asio::co_spawn(state.io_context,
                   Exchange(state.resolver, state.socket, state.buffer, origin_, request,
                            options_.max_response_body_bytes, connections_opened_, outcome),
                   [&](std::exception_ptr exception) {
                     finished = true;
                     if (exception) {
                       outcome.stale = false;
                       outcome.status = absl::InternalError("HTTP exchange threw");
                     }
                   });
    state.io_context.run_until(deadline);
    if (!finished) {
      // Past the deadline: abort what is under way and let its handlers finish.
      beast::error_code ignored;
      state.resolver.cancel();
      state.socket.close(ignored);
      state.io_context.run();
      return absl::DeadlineExceededError(absl::StrCat("no response from ", origin_.Origin(),
                                                      " within ",
                                                      absl::FormatDuration(options_.timeout)));
    }
    if (outcome.status.ok()) return std::move(outcome.response);
    if (outcome.stale && attempt == 0 && std::chrono::steady_clock::now() < deadline) continue;
    return outcome.status;
  }
}

}  // namespace meshtel::common
