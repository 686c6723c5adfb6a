#pragma once
// RouteTable: the outbound listener's static routes, from a request's Host to upstream addresses.
//
// A route for "name.namespace.svc.cluster.local" also answers to "name.namespace.svc",
// "name.namespace" and "name" (the first route defined keeps a short alias); a Host port is
// ignored and matching is case-insensitive. Addresses are resolved once, when the table is built.
// Threading: immutable after Build() except each route's round-robin counter (atomic), so it is
// shared by all IO threads without locks.

#include <atomic>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "boost/asio/ip/tcp.hpp"
#include "meshtel/v1/record.pb.h"
#include "proxy/config/proxy_config.h"

namespace meshtel::proxy {

struct Route {
  meshtel::v1::ServiceIdentity service;  // host, name, namespace
  std::string cluster_name;              // "outbound|<port>||<host>"
  std::vector<boost::asio::ip::tcp::endpoint> endpoints;
  absl::Duration timeout;
  mutable std::atomic<uint32_t> next_endpoint{0};

  // The next endpoint in round-robin order.
  const boost::asio::ip::tcp::endpoint& PickEndpoint() const;
};

class RouteTable {
 public:
  // Resolves every route's addresses; an unresolvable address names its config path.
  static absl::StatusOr<std::unique_ptr<RouteTable>> Build(const OutboundConfig& config);

  // The route for a Host header value ("backend", "backend.demo:8080", ...), or nullptr.
  const Route* Find(std::string_view host) const;

 private:
  std::vector<std::unique_ptr<Route>> routes_;
  absl::flat_hash_map<std::string, const Route*> by_name_;
};

// Resolves "host:port" to one endpoint (IP literals without a lookup).
absl::StatusOr<boost::asio::ip::tcp::endpoint> ResolveEndpoint(const common::HostPort& address);

}  // namespace meshtel::proxy
