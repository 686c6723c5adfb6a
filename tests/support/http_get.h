#pragma once
// Test support: a blocking HTTP/1.1 client for one request at a time.

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace meshtel::testing {

struct HttpResult {
  int status = 0;  // 0 when the request failed at the transport
  std::string body;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string error;                           // transport error, if any
};

// Sends one request on a new connection to 127.0.0.1:`port` and reads the whole response; gives
// up (status 0, `error` says why) when the whole exchange takes over 30 s.
HttpResult HttpRequest(uint16_t port, const std::string& method, const std::string& target,
                       const std::vector<std::pair<std::string, std::string>>& headers = {},
                       const std::string& body = "");
// Writes `bytes` on a new connection to 127.0.0.1:`port`, then returns everything read until the
// peer closes (or 10 s pass).
std::string RawExchange(uint16_t port, const std::string& bytes);

inline HttpResult HttpGet(uint16_t port, const std::string& target,
                          const std::vector<std::pair<std::string, std::string>>& headers = {}) {
  return HttpRequest(port, "GET", target, headers);
}

}  // namespace meshtel::testing
