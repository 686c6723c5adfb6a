#include "collector/common/host_port.h"

#include <arpa/inet.h>

#include <charconv>

#include "fmt/format.h"

namespace meshtel::common {

std::string HostPort::ToString() const {
  if (host.find(':') != std::string::npos) {
    return fmt::format("[{}]:{}", host, port);
  }
  return fmt::format("{}:{}", host, port);
}

bool IsIpAddress(std::string_view host) {
  const std::string text(host);
  unsigned char buffer[sizeof(struct in6_addr)];
  return inet_pton(AF_INET, text.c_str(), buffer) == 1 ||
         inet_pton(AF_INET6, text.c_str(), buffer) == 1;
}

absl::StatusOr<HostPort> ParseHostPort(std::string_view text) {
  std::string_view host;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return absl::InvalidArgumentError(fmt::format("'{}' is not a [host]:port address", text));
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    const size_t colon = text.rfind(':');
    if (colon == std::string_view::npos || text.find(':') != colon) {
      return absl::InvalidArgumentError(fmt::format("'{}' is not a host:port address", text));
    }
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  uint32_t port_number = 0;
  const auto [end, error] = std::from_chars(port.data(), port.data() + port.size(), port_number);
  if (host.empty() || port.empty() || error != std::errc() || end != port.data() + port.size() ||
      port_number > 65535) {
    return absl::InvalidArgumentError(fmt::format("'{}' is not a host:port address", text));
  }
  return HostPort{std::string(host), static_cast<uint16_t>(port_number)};
}

}  // namespace meshtel::common
