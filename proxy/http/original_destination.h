#pragma once
// OriginalDestination: where a connection redirected by iptables (REDIRECT, nat table) was going
// before the redirect, read from the kernel's connection tracking with SO_ORIGINAL_DST (IPv4) or
// IP6T_SO_ORIGINAL_DST (IPv6). Linux only; deploy/iptables/ sets up the redirection.
// Threading: a pure function of the socket; call it from the socket's thread.

#include <optional>

#include "boost/asio/ip/tcp.hpp"

namespace meshtel::proxy {

// The destination the client dialled on the connected socket `socket_fd` whose local address is
// `local`, or nullopt when the connection was not redirected (the kernel has no NAT entry, or the
// original destination is the socket's own local address).
std::optional<boost::asio::ip::tcp::endpoint> OriginalDestination(
    int socket_fd, const boost::asio::ip::tcp::endpoint& local);

}  // namespace meshtel::proxy
