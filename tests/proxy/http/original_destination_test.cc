#include "proxy/http/original_destination.h"

#include "boost/asio.hpp"
#include "gtest/gtest.h"

namespace meshtel::proxy {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

// A connection nobody redirected has no original destination. (Redirected connections are tested
// in a network namespace with iptables: tests/e2e/transparent_mode_test.cc.)
TEST(OriginalDestinationTest, DirectConnectionHasNone) {
  asio::io_context io_context;
  tcp::acceptor acceptor(io_context, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  tcp::socket client(io_context);
  client.connect(acceptor.local_endpoint());
  tcp::socket accepted(io_context);
  acceptor.accept(accepted);
  EXPECT_FALSE(
      OriginalDestination(accepted.native_handle(), accepted.local_endpoint()).has_value());
}

TEST(OriginalDestinationTest, UnconnectedSocketHasNone) {
  asio::io_context io_context;
  tcp::socket socket(io_context);
  socket.open(tcp::v4());
  EXPECT_FALSE(OriginalDestination(socket.native_handle(), tcp::endpoint()).has_value());
}

}  // namespace
}  // namespace meshtel::proxy
