#include "collector/common/host_port.h"

#include "gtest/gtest.h"

namespace meshtel::common {
namespace {

TEST(HostPortTest, ParsesNamesIpv4AndIpv6) {
  EXPECT_EQ(*ParseHostPort("collector:15140"), (HostPort{"collector", 15140}));
  EXPECT_EQ(*ParseHostPort("127.0.0.1:0"), (HostPort{"127.0.0.1", 0}));
  EXPECT_EQ(*ParseHostPort("[::1]:80"), (HostPort{"::1", 80}));
}

TEST(HostPortTest, RejectsMalformedAddresses) {
  for (const char* text : {"", "host", ":80", "host:", "host:http", "host:65536", "::1:80",
                           "[::1]80", "[::1]:", "host:-1", "host:80x"}) {
    absl::StatusOr<HostPort> parsed = ParseHostPort(text);
    EXPECT_FALSE(parsed.ok()) << text;
    if (!parsed.ok()) {
      EXPECT_NE(std::string(parsed.status().message()).find(text), std::string::npos) << text;
    }
  }
}

TEST(HostPortTest, PrintsIpv6InBrackets) {
  EXPECT_EQ((HostPort{"::1", 80}).ToString(), "[::1]:80");
  EXPECT_EQ((HostPort{"a", 1}).ToString(), "a:1");
}

}  // namespace
}  // namespace meshtel::common
