#include "collector/common/admin_http_server.h"

#include "gtest/gtest.h"
#include "tests/support/http_get.h"
#include "tests/support/process.h"

namespace meshtel::common {
namespace {

std::unique_ptr<AdminHttpServer> StartServer() {
  std::vector<std::pair<std::string, AdminHandler>> routes;
  routes.emplace_back("/echo", [](const AdminRequest& request) {
    return AdminResponse{.content_type = "text/x-test",
                         .body = request.method + " " + request.path + " ?" + request.query +
                                 " accept=" + request.accept + " body=" + request.body};
  });
  absl::StatusOr<std::unique_ptr<AdminHttpServer>> server =
      AdminHttpServer::Start(HostPort{"127.0.0.1", 0}, std::move(routes));
  EXPECT_TRUE(server.ok()) << server.status();
  return server.ok() ? *std::move(server) : nullptr;
}

TEST(AdminHttpServerTest, DispatchesByPath) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  testing::HttpResult result =
      testing::HttpRequest(server->port(), "POST", "/echo?x=1", {{"Accept", "text/plain"}}, "hi");
  EXPECT_EQ(result.status, 200);
  EXPECT_EQ(result.headers["content-type"], "text/x-test");
  EXPECT_EQ(result.body, "POST /echo ?x=1 accept=text/plain body=hi");
}

TEST(AdminHttpServerTest, UnknownPathIs404) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  EXPECT_EQ(testing::HttpGet(server->port(), "/nope").status, 404);
}

TEST(AdminHttpServerTest, OversizedBodyIs413AndServerGoesOn) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  EXPECT_EQ(
      testing::HttpRequest(server->port(), "POST", "/echo", {}, std::string(100000, 'x')).status,
      413);
  EXPECT_EQ(testing::HttpGet(server->port(), "/echo").status, 200);
}

TEST(AdminHttpServerTest, GarbageGets400AndServerGoesOn) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  const std::string reply = testing::RawExchange(server->port(), "NOT HTTP AT ALL\r\n\r\n");
  EXPECT_TRUE(reply.starts_with("HTTP/1.1 400")) << reply;
  // A chunked body's trailer field over 64 KiB (Beast's parser would throw on it).
  const std::string trailer = testing::RawExchange(
      server->port(),
      "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n"
      "x-big: " +
          std::string(100 * 1024, 't') + "\r\n\r\n");
  EXPECT_TRUE(trailer.starts_with("HTTP/1.1 400")) << trailer.substr(0, 100);
  EXPECT_EQ(testing::HttpGet(server->port(), "/echo").status, 200);
}

TEST(AdminHttpServerTest, PortInUseIsAnError) {
  auto first = StartServer();
  ASSERT_NE(first, nullptr);
  auto second = AdminHttpServer::Start(HostPort{"127.0.0.1", first->port()}, {});
  EXPECT_FALSE(second.ok());
}

}  // namespace
}  // namespace meshtel::common
