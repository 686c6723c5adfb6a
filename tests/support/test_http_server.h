#pragma once
// Test support: a small HTTP/1.1 server on 127.0.0.1 (Boost.Beast) that answers each request
// with what a handler returns. Keep-alive connections are served request after request; a reply
// can also hang (no answer until the server stops) or close the connection right after it.
//
// Threading: one IO thread of its own runs the server and calls the handler (one call at a
// time); a handler that records requests must lock what it shares with the test's thread.
// The destructor stops the server, dropping hung requests.

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
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

class TestHttpServer {
 public:
  using Handler = std::function<TestHttpReply(const TestHttpRequest&)>;

  // Starts listening on 127.0.0.1 on a free port.
  explicit TestHttpServer(Handler handler);
  ~TestHttpServer();

  TestHttpServer(const TestHttpServer&) = delete;
  TestHttpServer& operator=(const TestHttpServer&) = delete;

  uint16_t port() const { return port_; }
  uint64_t connections_accepted() const { return connections_accepted_.load(); }

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
  uint16_t port_ = 0;
  std::atomic<uint64_t> connections_accepted_{0};
  std::thread thread_;
};

}  // namespace meshtel::testing
