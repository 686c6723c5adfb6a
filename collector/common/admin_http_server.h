#pragma once
// AdminHttpServer: a small HTTP/1.1 server for operational endpoints (/metrics, /healthz, ...).
//
// Routes are exact paths fixed at start. Connections are read and written on the server's IO
// thread. Handlers run on the server's handler thread, one request at a time (so they need no
// locking among themselves, but must be thread-safe with respect to the rest of the program); a
// slow one (a large scrape, a trace lookup) delays the others but not the connections' IO. The
// routes named quick (health checks) are answered on the IO thread as soon as they are read,
// never behind a slow handler: a quick handler must be quick and thread-safe with respect to the
// other handlers too. Malformed requests get 400, unknown paths 404, request bodies over 64 KiB
// 413; the server keeps serving other connections. Connections are kept alive and closed after
// 60 s of silence.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "collector/common/host_port.h"

namespace meshtel::common {

struct AdminRequest {
  std::string method;           // "GET", "POST", ...
  std::string path;             // without the query
  std::string query;            // after '?', undecoded; empty when absent
  std::string accept;           // Accept header
  std::string accept_encoding;  // Accept-Encoding header
  std::string authorization;    // Authorization header
  bool from_loopback = false;   // the client connected from a loopback address
  std::string body;
};

struct AdminResponse {
  unsigned status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string content_encoding;  // e.g. "gzip" when the body is compressed; empty otherwise
  std::string body;
};

using AdminHandler = std::function<AdminResponse(const AdminRequest&)>;

class AdminHttpServer {
 public:
  // Binds `listen` (port 0 picks a free port) and starts serving on its own thread. A route is
  // an exact path, or, ending in '/', a prefix answering every path under it (the exact match
  // and then the longest prefix win).
  static absl::StatusOr<std::unique_ptr<AdminHttpServer>> Start(
      const HostPort& listen, std::vector<std::pair<std::string, AdminHandler>> routes,
      std::vector<std::string> quick_routes = {});
  // Stops accepting, closes open connections and joins the threads (after a running handler).
  ~AdminHttpServer();

  AdminHttpServer(const AdminHttpServer&) = delete;
  AdminHttpServer& operator=(const AdminHttpServer&) = delete;

  uint16_t port() const { return port_; }

 private:
  struct Impl;
  explicit AdminHttpServer(std::unique_ptr<Impl> impl, uint16_t port);

  std::unique_ptr<Impl> impl_;
  uint16_t port_;
};

}  // namespace meshtel::common
