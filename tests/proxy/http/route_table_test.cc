#include "proxy/http/route_table.h"

#include "gtest/gtest.h"

namespace meshtel::proxy {
namespace {

OutboundConfig TwoRoutes() {
  OutboundConfig config;
  config.timeout = absl::Seconds(15);
  RouteConfig reviews;
  reviews.host = "reviews.bookinfo.svc.cluster.local";
  reviews.addresses = {{"127.0.0.1", 9001}, {"127.0.0.1", 9002}};
  reviews.timeout = absl::Seconds(2);
  RouteConfig external;
  external.host = "api.example.com";
  external.addresses = {{"127.0.0.1", 443}};
  config.routes = {reviews, external};
  return config;
}

TEST(RouteTableTest, MatchesKubernetesShortNamesWithOrWithoutPort) {
  auto table = RouteTable::Build(TwoRoutes());
  ASSERT_TRUE(table.ok()) << table.status();
  for (const char* host :
       {"reviews.bookinfo.svc.cluster.local", "reviews.bookinfo.svc", "reviews.bookinfo", "reviews",
        "reviews:9080", "REVIEWS.Bookinfo:9080", "reviews.bookinfo.svc.cluster.local:80"}) {
    const Route* route = (*table)->Find(host);
    ASSERT_NE(route, nullptr) << host;
    EXPECT_EQ(route->service.host(), "reviews.bookinfo.svc.cluster.local") << host;
  }
  const Route* route = (*table)->Find("reviews");
  EXPECT_EQ(route->service.name(), "reviews");
  EXPECT_EQ(route->service.namespace_(), "bookinfo");
  EXPECT_EQ(route->timeout, absl::Seconds(2));
  EXPECT_EQ(route->cluster_name, "outbound|9001||reviews.bookinfo.svc.cluster.local");
}

TEST(RouteTableTest, OtherHostsMatchExactlyAndInheritTheTimeout) {
  auto table = RouteTable::Build(TwoRoutes());
  ASSERT_TRUE(table.ok());
  const Route* route = (*table)->Find("api.example.com:443");
  ASSERT_NE(route, nullptr);
  EXPECT_EQ(route->timeout, absl::Seconds(15));
  EXPECT_EQ((*table)->Find("api"), nullptr);
  EXPECT_EQ((*table)->Find("ratings"), nullptr);
  EXPECT_EQ((*table)->Find(""), nullptr);
  EXPECT_EQ((*table)->Find(std::string(300, 'a')), nullptr);
}

TEST(RouteTableTest, RoundRobinAcrossAddresses) {
  auto table = RouteTable::Build(TwoRoutes());
  ASSERT_TRUE(table.ok());
  const Route* route = (*table)->Find("reviews");
  EXPECT_EQ(route->PickEndpoint().port(), 9001);
  EXPECT_EQ(route->PickEndpoint().port(), 9002);
  EXPECT_EQ(route->PickEndpoint().port(), 9001);
}

TEST(RouteTableTest, UnresolvableAddressNamesItsPath) {
  OutboundConfig config = TwoRoutes();
  config.routes[1].addresses = {{"127.0.0.1", 1}, {"no-such-host.invalid", 80}};
  auto table = RouteTable::Build(config);
  ASSERT_FALSE(table.ok());
  EXPECT_NE(std::string(table.status().message()).find("outbound.routes[1].addresses[1]"),
            std::string::npos);
}

}  // namespace
}  // namespace meshtel::proxy
