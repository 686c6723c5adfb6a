#pragma once
// Test support: a small HTTP/1.1 server on 127.0.0.1 (Boost.Beast) that answers each request
// with what a handler returns. Keep-alive connections are served request after request; a reply
// can also hang (no answer until the server stops) or close the connection right after it.
// Built with TestTlsOptions it speaks HTTPS only (TLS 1.2 or 1.3, OpenSSL): a connection whose
// handshake fails is closed without a request, and counted in tls_handshakes_failed().
//
// Threading: one IO thread of its own runs the server and calls the handler (one call at a
// time); a handler that records requests must lock what it shares with the test's thread.
// The destructor stops the server, dropping hung requests.

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace meshtel::testing {

struct TestHttpRequest {
  std::string method;
  std::string target;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  uint64_t connection = 0;  // 1, 2, ... in accept order
};

struct TestHttpReply {
  int status = 204;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  bool hang = false;         // never answer (until the server stops)
  bool close_after = false;  // answer as keep-alive, then close the connection anyway
};

// The server side of TLS: its certificate chain and key (PEM) and, for mutual TLS, the roots
// that must have signed the client's certificate.
struct TestTlsOptions {
  std::string cert_pem;
  std::string key_pem;
  std::string client_ca_pem;  // not empty: a client certificate signed by it is required
};

class TestHttpServer {
 public:
  using Handler = std::function<TestHttpReply(const TestHttpRequest&)>;

  // Starts listening on 127.0.0.1 on a free port, plaintext.
  explicit TestHttpServer(Handler handler);
  // The same over TLS only, unless `tls` is nullopt.
  TestHttpServer(Handler handler, const std::optional<TestTlsOptions>& tls);
  ~TestHttpServer();

  TestHttpServer(const TestHttpServer&) = delete;
  TestHttpServer& operator=(const TestHttpServer&) = delete;

  uint16_t port() const { return port_; }
  uint64_t connections_accepted() const { return connections_accepted_.load(); }
  // TLS: handshakes that completed / failed (a client that refused the certificate, a missing
  // client certificate, a plaintext client).
  uint64_t tls_handshakes() const { return tls_handshakes_.load(); }
  uint64_t tls_handshakes_failed() const { return tls_handshakes_failed_.load(); }

  struct Impl;

 private:
  void Start();

  std::unique_ptr<Impl> impl_;
  uint16_t port_ = 0;
  std::atomic<uint64_t> connections_accepted_{0};
  std::atomic<uint64_t> tls_handshakes_{0};
  std::atomic<uint64_t> tls_handshakes_failed_{0};
  std::thread thread_;
};

}  // namespace meshtel::testing
