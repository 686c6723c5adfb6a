#pragma once
// HostPort: a "host:port" network address as written in configuration.

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace meshtel::common {

struct HostPort {
  std::string host;   // name, IPv4 literal, or IPv6 literal without brackets
  uint16_t port = 0;  // 0 = any free port (listeners only)

  // "host:port" (IPv6 hosts in brackets).
  std::string ToString() const;
  bool operator==(const HostPort&) const = default;
};

// True when `host` is an IPv4 or IPv6 literal (listeners bind to addresses, not names).
bool IsIpAddress(std::string_view host);

// Parses "host:port" or "[v6]:port". The host must not be empty; the port must be 0..65535.
absl::StatusOr<HostPort> ParseHostPort(std::string_view text);

}  // namespace meshtel::common
