#include "collector/common/http_connection.h"

#include <stdexcept>

#include "boost/asio.hpp"
#include "gtest/gtest.h"

namespace meshtel::common {
namespace {

namespace asio = boost::asio;

TEST(ConnectionEndTest, AThrowingConnectionEndsAloneAndTheIoContextRunsOn) {
  asio::io_context io_context;
  bool later_ran = false;
  asio::co_spawn(
      io_context,
      []() -> asio::awaitable<void> {
        throw std::length_error("field value too large");
        co_return;
      },
      ConnectionEnd("test server"));
  asio::co_spawn(
      io_context,
      [&later_ran]() -> asio::awaitable<void> {
        later_ran = true;
        co_return;
      },
      ConnectionEnd("test server"));
  EXPECT_NO_THROW(io_context.run());
  EXPECT_TRUE(later_ran);
  // A connection that ends normally is not an error.
  EXPECT_NO_THROW(ConnectionEnd("test server")(nullptr));
}

}  // namespace
}  // namespace meshtel::common
