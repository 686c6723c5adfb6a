#pragma once
// HttpClient: a small blocking HTTP/1.1 client for the collector's push exporters (Loki today).
//
// One client talks to one origin (`http://host:port`) over at most one connection, which it keeps
// open between requests when the server allows it (keep-alive) and opens again when needed. A
// request that fails on a reused connection before any response byte arrived (the server closed
// the idle connection) is sent once more on a new connection, within the same deadline.
//
// Timeout: each Post() has one total deadline covering name resolution, connect, write and read;
// past it the connection is closed and Post() returns DeadlineExceeded. (A host name is resolved
// by the system resolver, which cannot be interrupted: a hanging DNS server can hold Post() past
// its deadline. IP literals are never resolved.)
// No TLS: only `http://` URLs are accepted; put a TLS-terminating proxy in front when needed.
//
// Threading: not thread-safe; one thread uses a client at a time (the delivery engine calls an
// exporter from its one delivery thread). Ownership: the client owns its connection and closes it
// in the destructor.
// Errors: ParseHttpUrl() returns InvalidArgument naming what is wrong with the URL. Post()
// returns any HTTP status as a response (4xx/5xx are not errors here); transport failures are
// Unavailable (resolve, connect, reset, malformed response, body over the limit) or
// DeadlineExceeded (the deadline passed), with the origin in the message.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace meshtel::common {

// The parts of an `http://host[:port][/path][?query]` URL.
struct HttpUrl {
  std::string host;  // a name, an IPv4 literal or an IPv6 literal (without brackets)
  uint16_t port = 80;
  std::string target = "/";  // path and query, as sent on the request line

  // "host:port" ("[v6]:port"), for messages and the Host header.
  std::string Origin() const;
};

// Parses an http URL; https and every other scheme are refused (no TLS).
absl::StatusOr<HttpUrl> ParseHttpUrl(std::string_view url);

using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

struct HttpResponse {
  int status = 0;
  HttpHeaders headers;  // as received, names as the server wrote them
  std::string body;

  // The first header named `name` (case-insensitive), or nullopt.
  std::optional<std::string> Header(std::string_view name) const;
};

struct HttpClientOptions {
  // Total time of one Post(): resolve + connect + write + read.
  absl::Duration timeout = absl::Seconds(10);
  // Largest response body read; a longer one fails the request (Unavailable).
  size_t max_response_body_bytes = 4 << 20;
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

  // Connections opened so far (1 while keep-alive works), for tests and logs.
  uint64_t connections_opened() const { return connections_opened_; }

 private:
  struct State;
  absl::StatusOr<HttpResponse> Send(bool get, std::string_view target, const HttpHeaders& headers,
                                    std::string_view body);

  HttpUrl origin_;
  HttpClientOptions options_;
  std::unique_ptr<State> state_;
  uint64_t connections_opened_ = 0;
};

}  // namespace meshtel::common
