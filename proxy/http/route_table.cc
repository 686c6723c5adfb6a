#include "proxy/http/route_table.h"

#include <cctype>

#include "boost/asio/io_context.hpp"
#include "fmt/format.h"
#include "proxy/identity/peer_metadata.h"

namespace meshtel::proxy {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

const tcp::endpoint& Route::PickEndpoint() const {
  const uint32_t index = next_endpoint.fetch_add(1, std::memory_order_relaxed);
  return endpoints[index % endpoints.size()];
}

absl::StatusOr<tcp::endpoint> ResolveEndpoint(const common::HostPort& address) {
  boost::system::error_code error;
  const asio::ip::address ip = asio::ip::make_address(address.host, error);
  if (!error) return tcp::endpoint(ip, address.port);
  asio::io_context io_context;
  tcp::resolver resolver(io_context);
  auto results = resolver.resolve(address.host, std::to_string(address.port), error);
  if (error || results.empty()) {
    return absl::UnavailableError(
        fmt::format("cannot resolve '{}': {}", address.ToString(), error.message()));
  }
  return results.begin()->endpoint();
}

absl::StatusOr<std::unique_ptr<RouteTable>> RouteTable::Build(const OutboundConfig& config) {
  auto table = std::make_unique<RouteTable>();
  for (size_t i = 0; i < config.routes.size(); ++i) {
    const RouteConfig& route_config = config.routes[i];
    auto route = std::make_unique<Route>();
    route->service = ServiceFromHost(route_config.host);
    route->timeout =
        route_config.timeout > absl::ZeroDuration() ? route_config.timeout : config.timeout;
    for (size_t j = 0; j < route_config.addresses.size(); ++j) {
      absl::StatusOr<tcp::endpoint> endpoint = ResolveEndpoint(route_config.addresses[j]);
      if (!endpoint.ok()) {
        return absl::InvalidArgumentError(fmt::format("outbound.routes[{}].addresses[{}]: {}", i, j,
                                                      std::string(endpoint.status().message())));
      }
      route->endpoints.push_back(*endpoint);
    }
    route->cluster_name =
        fmt::format("outbound|{}||{}", route->endpoints.front().port(), route_config.host);

    std::vector<std::string> names = {route_config.host};
    constexpr std::string_view kClusterSuffix = ".svc.cluster.local";
    if (route_config.host.ends_with(kClusterSuffix) && !route->service.namespace_().empty()) {
      const std::string& name = route->service.name();
      const std::string& ns = route->service.namespace_();
      names.push_back(fmt::format("{}.{}.svc", name, ns));
      names.push_back(fmt::format("{}.{}", name, ns));
      names.push_back(name);
    }
    for (const std::string& name : names) table->by_name_.try_emplace(name, route.get());
    table->routes_.push_back(std::move(route));
  }
  return table;
}

const Route* RouteTable::Find(std::string_view host) const {
  // Drop the port ("host:8080"; an IPv6 literal "[::1]:80" keeps its brackets).
  const size_t colon = host.rfind(':');
  if (colon != std::string_view::npos && host.find(']') == std::string_view::npos) {
    host = host.substr(0, colon);
  }
  char lower[256];
  if (host.empty() || host.size() > sizeof(lower)) return nullptr;
  for (size_t i = 0; i < host.size(); ++i) {
    lower[i] = static_cast<char>(std::tolower(static_cast<unsigned char>(host[i])));
  }
  auto it = by_name_.find(absl::string_view(lower, host.size()));
  return it == by_name_.end() ? nullptr : it->second;
}

}  // namespace meshtel::proxy
