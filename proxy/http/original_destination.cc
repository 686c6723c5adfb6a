#include "proxy/http/original_destination.h"

#include <linux/netfilter_ipv4.h>
#include <linux/netfilter_ipv6/ip6_tables.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>

namespace meshtel::proxy {

// Redirected connections are tested end to end in a network namespace:
// tests/e2e/transparent_mode_test.cc.
std::optional<boost::asio::ip::tcp::endpoint> OriginalDestination(
    int socket_fd, const boost::asio::ip::tcp::endpoint& local) {
  if (socket_fd < 0) return std::nullopt;
  sockaddr_storage storage;
  std::memset(&storage, 0, sizeof(storage));
  socklen_t length = sizeof(storage);
  const bool v6 = local.address().is_v6() && !local.address().to_v6().is_v4_mapped();
  const int result = v6 ? ::getsockopt(socket_fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, &storage, &length)
                        : ::getsockopt(socket_fd, SOL_IP, SO_ORIGINAL_DST, &storage, &length);
  if (result != 0) return std::nullopt;
  boost::asio::ip::tcp::endpoint original;
  if (storage.ss_family == AF_INET) {
    const auto* address = reinterpret_cast<const sockaddr_in*>(&storage);
    original = boost::asio::ip::tcp::endpoint(
        boost::asio::ip::address_v4(ntohl(address->sin_addr.s_addr)), ntohs(address->sin_port));
  } else if (storage.ss_family == AF_INET6) {
    const auto* address = reinterpret_cast<const sockaddr_in6*>(&storage);
    boost::asio::ip::address_v6::bytes_type bytes;
    std::memcpy(bytes.data(), address->sin6_addr.s6_addr, bytes.size());
    original = boost::asio::ip::tcp::endpoint(boost::asio::ip::address_v6(bytes),
                                              ntohs(address->sin6_port));
  } else {
    return std::nullopt;
  }
  if (original == local) return std::nullopt;
  return original;
}

}  // namespace meshtel::proxy
