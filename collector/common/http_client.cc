#include "collector/common/http_client.h"

#include <cctype>
#include <charconv>
#include <chrono>
#include <exception>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "boost/asio.hpp"
#include "boost/asio/ssl.hpp"
#include "boost/beast.hpp"
#include "boost/beast/ssl.hpp"
#include "collector/common/http_connection.h"
#include "openssl/err.h"
#include "openssl/ssl.h"
#include "openssl/x509.h"

namespace meshtel::common {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using TlsStream = beast::ssl_stream<tcp::socket>;

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
  // The response lets the connection stay open.
  bool keep_alive = false;
};

}  // namespace

std::string HttpUrl::Origin() const {
  if (host.find(':') != std::string::npos) return absl::StrCat("[", host, "]:", port);
  return absl::StrCat(host, ":", port);
}

bool IsHttpsUrl(std::string_view url) {
  constexpr std::string_view kHttps = "https://";
  return url.size() >= kHttps.size() && EqualsIgnoreCase(url.substr(0, kHttps.size()), kHttps);
}

std::string HttpUrl::HostHeader() const {
  if (port != (https ? 443 : 80)) return Origin();
  if (host.find(':') != std::string::npos) return absl::StrCat("[", host, "]");
  return host;
}

absl::StatusOr<HttpUrl> ParseHttpUrl(std::string_view url) {
  constexpr std::string_view kHttp = "http://";
  const bool https = IsHttpsUrl(url);
  if (!https &&
      (url.size() < kHttp.size() || !EqualsIgnoreCase(url.substr(0, kHttp.size()), kHttp))) {
    return UrlError(url, "is not an http:// or https:// URL");
  }
  std::string_view rest = url.substr(https ? kHttp.size() + 1 : kHttp.size());
  const size_t authority_end = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, authority_end);
  std::string_view target =
      authority_end == std::string_view::npos ? std::string_view() : rest.substr(authority_end);
  if (target.find('#') != std::string_view::npos) return UrlError(url, "has a fragment");
  if (authority.find('@') != std::string_view::npos) {
    return UrlError(url, "carries credentials, which are not supported in the URL");
  }
  HttpUrl parsed;
  parsed.https = https;
  parsed.port = https ? 443 : 80;
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

HttpTlsOptions HttpTlsOptions::From(const TlsConfig& config) {
  return HttpTlsOptions{.ca_pem = config.ca_pem,
                        .cert_pem = config.cert_pem,
                        .key_pem = config.key_pem,
                        .server_name = config.server_name};
}

struct HttpClient::State {
  asio::io_context io_context;
  tcp::resolver resolver{io_context};
  tcp::socket socket{io_context};             // http://: the connection
  std::unique_ptr<ssl::context> tls_context;  // https://: built once
  std::unique_ptr<TlsStream> tls_stream;      // https://: the connection, new for each one
  std::string server_name;                    // https://: verified name and SNI
  // Bytes read past one response stay here for the next; bounded (http_connection.h).
  beast::flat_buffer buffer{kMaxHttpReadBufferBytes};

  // The TCP socket of the connection (of the TLS stream for https://, when there is one).
  tcp::socket& Socket() { return tls_stream ? tls_stream->next_layer() : socket; }
};

namespace {

// Builds the TLS context of a client: TLS 1.2 or newer, the server always verified.
absl::StatusOr<std::unique_ptr<ssl::context>> MakeTlsContext(const HttpTlsOptions& options) {
  auto context = std::make_unique<ssl::context>(ssl::context::tls_client);
  SSL_CTX_set_min_proto_version(context->native_handle(), TLS1_2_VERSION);
  beast::error_code error;
  context->set_verify_mode(ssl::verify_peer, error);
  if (options.ca_pem.empty()) {
    context->set_default_verify_paths(error);
    if (error) {
      return absl::InvalidArgumentError(
          absl::StrCat("TLS: cannot load the system's default roots: ", error.message()));
    }
  } else {
    context->add_certificate_authority(asio::buffer(options.ca_pem), error);
    if (error) {
      return absl::InvalidArgumentError(
          absl::StrCat("TLS: the CA certificates cannot be used: ", error.message()));
    }
  }
  if (options.cert_pem.empty() != options.key_pem.empty()) {
    return absl::InvalidArgumentError(
        "TLS: a client certificate needs its key and a key its certificate (mutual TLS)");
  }
  if (!options.cert_pem.empty()) {
    context->use_certificate_chain(asio::buffer(options.cert_pem), error);
    if (error) {
      return absl::InvalidArgumentError(
          absl::StrCat("TLS: the client certificate cannot be used: ", error.message()));
    }
    context->use_private_key(asio::buffer(options.key_pem), ssl::context::pem, error);
    if (error) {
      return absl::InvalidArgumentError(
          absl::StrCat("TLS: the client key cannot be used (it must be the private key of the "
                       "client certificate): ",
                       error.message()));
    }
    if (SSL_CTX_check_private_key(context->native_handle()) != 1) {
      ERR_clear_error();
      return absl::InvalidArgumentError(
          "TLS: the client key does not belong to the client certificate");
    }
  }
  return context;
}

// True when `error` says the peer closed the connection (with or without a TLS close_notify).
bool IsConnectionClosed(const beast::error_code& error) {
  if (error == http::error::end_of_stream || error == asio::error::eof ||
      error == asio::error::connection_reset || error == asio::error::broken_pipe ||
      error == ssl::error::stream_truncated) {
    return true;
  }
#ifdef SSL_R_UNEXPECTED_EOF_WHILE_READING
  // OpenSSL 3 reports a close without close_notify as this error, which Boost 1.74 passes on.
  if (error.category() == asio::error::get_ssl_category() &&
      ERR_GET_REASON(static_cast<unsigned long>(error.value())) ==
          SSL_R_UNEXPECTED_EOF_WHILE_READING) {
    return true;
  }
#endif
  return false;
}

// The Unavailable status of a failed TLS handshake; a certificate that failed verification says
// so, with OpenSSL's reasons.
absl::Status HandshakeError(TlsStream& stream, const std::string& origin,
                            const std::string& server_name, const beast::error_code& error) {
  const long verify_result = SSL_get_verify_result(stream.native_handle());
  const bool verify_failed =
      verify_result != X509_V_OK || (error.category() == asio::error::get_ssl_category() &&
                                     ERR_GET_REASON(static_cast<unsigned long>(error.value())) ==
                                         SSL_R_CERTIFICATE_VERIFY_FAILED);
  if (verify_failed) {
    return absl::UnavailableError(absl::StrCat(
        "TLS verification of the server certificate of ", origin, " (for the name '", server_name,
        "') failed: ", error.message(), " (", X509_verify_cert_error_string(verify_result), ")"));
  }
  return absl::UnavailableError(
      absl::StrCat("TLS handshake with ", origin, " failed: ", error.message()));
}

// Opens a TCP connection to `origin` on `socket`; an error is the failed attempt's status.
asio::awaitable<absl::Status> Connect(tcp::resolver& resolver, tcp::socket& socket,
                                      const HttpUrl& origin) {
  beast::error_code error;
  beast::error_code not_literal;
  const asio::ip::address address = asio::ip::make_address(origin.host, not_literal);
  if (!not_literal) {
    co_await socket.async_connect(tcp::endpoint(address, origin.port),
                                  asio::redirect_error(asio::use_awaitable, error));
  } else {
    const tcp::resolver::results_type endpoints = co_await resolver.async_resolve(
        origin.host, std::to_string(origin.port), asio::redirect_error(asio::use_awaitable, error));
    if (error) {
      co_return absl::UnavailableError(
          absl::StrCat("cannot resolve ", origin.host, ": ", error.message()));
    }
    co_await asio::async_connect(socket, endpoints,
                                 asio::redirect_error(asio::use_awaitable, error));
  }
  if (error) {
    co_return absl::UnavailableError(
        absl::StrCat("cannot connect to ", origin.Origin(), ": ", error.message()));
  }
  socket.set_option(tcp::no_delay(true), error);
  co_return absl::OkStatus();
}

// Writes the request on `stream` (a TCP socket or a TLS stream) and reads the response.
template <class Stream>
asio::awaitable<void> WriteAndRead(Stream& stream, beast::flat_buffer& buffer,
                                   const HttpUrl& origin,
                                   const http::request<http::string_body>& request,
                                   size_t max_body_bytes, bool reused, Outcome& outcome) {
  beast::error_code error;
  co_await http::async_write(stream, request, asio::redirect_error(asio::use_awaitable, error));
  if (error) {
    outcome.stale = reused;
    outcome.status = absl::UnavailableError(
        absl::StrCat("writing to ", origin.Origin(), " failed: ", error.message()));
    co_return;
  }
  http::response_parser<http::string_body> parser;
  parser.body_limit(max_body_bytes);
  co_await http::async_read_header(stream, buffer, parser,
                                   asio::redirect_error(asio::use_awaitable, error));
  // Boost 1.74's parser does not hold a Content-Length body to body_limit: check it here.
  if (!error && parser.content_length() && *parser.content_length() > max_body_bytes) {
    error = http::error::body_limit;
  }
  if (!error && !parser.is_done()) {
    co_await http::async_read(stream, buffer, parser,
                              asio::redirect_error(asio::use_awaitable, error));
  }
  if (error) {
    outcome.stale = reused && !parser.got_some() && IsConnectionClosed(error);
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
  outcome.keep_alive = response.keep_alive();
}

// One attempt: connects (and shakes hands, for https://) when there is no open connection,
// writes the request and reads the response. Every failure closes the connection.
asio::awaitable<void> Exchange(HttpClient::State& state, const HttpUrl& origin,
                               const http::request<http::string_body>& request,
                               size_t max_body_bytes, uint64_t& connections_opened,
                               Outcome& outcome) {
  const auto close = [&state] {
    beast::error_code ignored;
    state.Socket().shutdown(tcp::socket::shutdown_both, ignored);
    state.Socket().close(ignored);
  };
  const bool reused = state.Socket().is_open();
  if (!reused) {
    state.buffer.clear();
    if (origin.https) {
      state.tls_stream = std::make_unique<TlsStream>(state.io_context, *state.tls_context);
    }
    if (absl::Status connected = co_await Connect(state.resolver, state.Socket(), origin);
        !connected.ok()) {
      close();
      outcome.status = std::move(connected);
      co_return;
    }
    ++connections_opened;
    if (origin.https) {
      TlsStream& stream = *state.tls_stream;
      beast::error_code error;
      beast::error_code not_literal;
      (void)asio::ip::make_address(state.server_name, not_literal);
      // SNI carries host names only (RFC 6066 §3).
      if (not_literal &&
          SSL_set_tlsext_host_name(stream.native_handle(), state.server_name.c_str()) != 1) {
        ERR_clear_error();
      }
      // The name check of Boost's verifier, with OpenSSL's error set when it refuses, so the
      // failure names its reason ("hostname mismatch").
      stream.set_verify_callback(
          [verify = ssl::host_name_verification(state.server_name)](bool preverified,
                                                                    ssl::verify_context& context) {
            const bool verified = verify(preverified, context);
            if (!verified && X509_STORE_CTX_get_error(context.native_handle()) == X509_V_OK) {
              X509_STORE_CTX_set_error(context.native_handle(), X509_V_ERR_HOSTNAME_MISMATCH);
            }
            return verified;
          },
          error);
      if (!error) {
        co_await stream.async_handshake(ssl::stream_base::client,
                                        asio::redirect_error(asio::use_awaitable, error));
      }
      if (error) {
        outcome.status = HandshakeError(stream, origin.Origin(), state.server_name, error);
        close();
        co_return;
      }
    }
  }
  if (origin.https) {
    co_await WriteAndRead(*state.tls_stream, state.buffer, origin, request, max_body_bytes, reused,
                          outcome);
  } else {
    co_await WriteAndRead(state.socket, state.buffer, origin, request, max_body_bytes, reused,
                          outcome);
  }
  if (!outcome.status.ok() || !outcome.keep_alive) close();
}

}  // namespace

HttpClient::HttpClient(HttpUrl origin, HttpClientOptions options)
    : origin_(std::move(origin)), options_(std::move(options)), state_(std::make_unique<State>()) {
  if (!origin_.https) return;
  state_->server_name = options_.tls.server_name.empty() ? origin_.host : options_.tls.server_name;
  absl::StatusOr<std::unique_ptr<ssl::context>> context = MakeTlsContext(options_.tls);
  if (context.ok()) {
    state_->tls_context = *std::move(context);
  } else {
    tls_status_ = absl::InvalidArgumentError(
        absl::StrCat(origin_.Origin(), ": ", context.status().message()));
  }
  // The PEM texts are in the context now (or refused): no copy of the key is kept.
  options_.tls = HttpTlsOptions{};
}

HttpClient::~HttpClient() {
  beast::error_code ignored;
  state_->Socket().close(ignored);
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
  if (!tls_status_.ok()) return tls_status_;
  const auto deadline =
      std::chrono::steady_clock::now() + absl::ToChronoNanoseconds(options_.timeout);
  http::request<http::string_body> request{get ? http::verb::get : http::verb::post,
                                           beast::string_view(target.data(), target.size()), 11};
  request.set(http::field::host, origin_.HostHeader());
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
                   Exchange(state, origin_, request, options_.max_response_body_bytes,
                            connections_opened_, outcome),
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
      state.Socket().close(ignored);
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
