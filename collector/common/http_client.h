#pragma once
// HttpClient: a small blocking HTTP/1.1 client for the collector's push exporters (Loki, OTLP over
// http/protobuf, Prometheus remote write) and meshtelctl.
//
// One client talks to one origin (`http://host:port` or `https://host:port`) over at most one
// connection, which it keeps open between requests when the server allows it (keep-alive) and
// opens again when needed. A request that fails on a reused connection before any response byte
// arrived (the server closed the idle connection) is sent once more on a new connection, within
// the same deadline.
//
// Timeout: each Post() has one total deadline covering name resolution, connect, the TLS
// handshake, write and read; past it the connection is closed and Post() returns
// DeadlineExceeded. (A host name is resolved by the system resolver, which cannot be interrupted:
// a hanging DNS server can hold Post() past its deadline. IP literals are never resolved.)
//
// TLS: an `https://` origin is spoken over TLS (1.2 or newer, OpenSSL through Boost.Asio). The
// server's certificate is always verified — against HttpTlsOptions::ca_pem, or the system's
// default roots when it is empty — and must hold the server name (HttpTlsOptions::server_name, or
// the URL's host), which is also sent as SNI (unless it is an IP literal). There is no switch to
// skip verification. A client certificate and key (mutual TLS) are presented when given. The TLS
// context is built once, in the constructor; the session is not resumed across connections.
//
// Threading: not thread-safe; one thread uses a client at a time (the delivery engine calls an
// exporter from its one delivery thread). Ownership: the client owns its connection and its TLS
// context and closes the connection in the destructor (without a TLS close_notify).
// Errors: ParseHttpUrl() returns InvalidArgument naming what is wrong with the URL. Post()
// returns any HTTP status as a response (4xx/5xx are not errors here); transport failures are
// Unavailable (resolve, connect, TLS handshake, reset, malformed response, body over the limit)
// or DeadlineExceeded (the deadline passed), with the origin in the message. A server
// certificate that fails verification is Unavailable with "TLS verification of the server
// certificate ... failed" and OpenSSL's reasons ("certificate verify failed", "unable to get
// local issuer certificate", "hostname mismatch"). TLS options OpenSSL refuses (a PEM block that
// is not a certificate or key, a key that does not match the certificate) make every request
// fail with InvalidArgument without touching the network; tls_status() tells it at once.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "collector/common/tls_config.h"

namespace meshtel::common {

// The parts of an `http[s]://host[:port][/path][?query]` URL.
struct HttpUrl {
  bool https = false;        // the scheme: https (TLS) or http
  std::string host;          // a name, an IPv4 literal or an IPv6 literal (without brackets)
  uint16_t port = 80;        // default: 80 for http, 443 for https
  std::string target = "/";  // path and query, as sent on the request line

  // "host:port" ("[v6]:port"), for messages.
  std::string Origin() const;
  // The Host header: Origin() without the port when it is the scheme's default (80, 443).
  std::string HostHeader() const;
};

// Parses an http:// or https:// URL; every other scheme is refused.
absl::StatusOr<HttpUrl> ParseHttpUrl(std::string_view url);

// True when `url` starts with "https://" (in any case): the quick test config readers use to
// know whether a URL asks for TLS before the URL is checked in full.
bool IsHttpsUrl(std::string_view url);

using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

struct HttpResponse {
  int status = 0;
  HttpHeaders headers;  // as received, names as the server wrote them
  std::string body;

  // The first header named `name` (case-insensitive), or nullopt.
  std::optional<std::string> Header(std::string_view name) const;
};

// How an https:// origin is verified and whom the client presents itself as. Unused for http://.
struct HttpTlsOptions {
  // PEM certificates of the roots that verify the server. Empty: the system's default roots.
  std::string ca_pem;
  // PEM client certificate chain and its private key, for mutual TLS; both or neither.
  std::string cert_pem;
  std::string key_pem;
  // The name the server certificate must hold, also sent as SNI. Empty: the URL's host.
  std::string server_name;

  // The PEM contents and server name of a `tls:` block read by ReadUrlTlsConfig().
  static HttpTlsOptions From(const TlsConfig& config);
};

struct HttpClientOptions {
  // Total time of one Post(): resolve + connect + TLS handshake + write + read.
  absl::Duration timeout = absl::Seconds(10);
  // Largest response body read; a longer one fails the request (Unavailable).
  size_t max_response_body_bytes = 4 << 20;
  // https:// origins only.
  HttpTlsOptions tls;
};

class HttpClient {
 public:
  HttpClient(HttpUrl origin, HttpClientOptions options);
  ~HttpClient();

  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // POSTs `body` to `target` ("/loki/api/v1/push") with `headers` (Host, Content-Length and
  // Connection are set by the client) and returns the response.
  absl::StatusOr<HttpResponse> Post(std::string_view target, const HttpHeaders& headers,
                                    std::string_view body);

  // GETs `target` with `headers`.
  absl::StatusOr<HttpResponse> Get(std::string_view target, const HttpHeaders& headers = {});

  // Connections opened so far (1 while keep-alive works), for tests and logs. With TLS, a
  // connection counts once its TCP connect succeeded (before the handshake).
  uint64_t connections_opened() const { return connections_opened_; }

  // OK, or why the TLS options could not be used (InvalidArgument; https:// origins only).
  const absl::Status& tls_status() const { return tls_status_; }

  // The connection and what it is made of (http_client.cc).
  struct State;

 private:
  absl::StatusOr<HttpResponse> Send(bool get, std::string_view target, const HttpHeaders& headers,
                                    std::string_view body);

  HttpUrl origin_;
  HttpClientOptions options_;
  std::unique_ptr<State> state_;
  uint64_t connections_opened_ = 0;
  absl::Status tls_status_;
};

}  // namespace meshtel::common
