#include "collector/common/admin_http_server.h"

#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>

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

// A health check is answered while a slow handler (a large scrape) runs; the other routes wait
// for it, one handler at a time.
TEST(AdminHttpServerTest, AQuickRouteIsAnsweredWhileASlowHandlerRuns) {
  std::mutex mutex;
  std::condition_variable changed;
  bool slow_started = false;
  bool release_slow = false;
  std::vector<std::pair<std::string, AdminHandler>> routes;
  routes.emplace_back("/slow", [&](const AdminRequest&) {
    std::unique_lock<std::mutex> lock(mutex);
    slow_started = true;
    changed.notify_all();
    changed.wait(lock, [&] { return release_slow; });
    return AdminResponse{.body = "slow\n"};
  });
  routes.emplace_back("/healthz",
                      [](const AdminRequest&) { return AdminResponse{.body = "ok\n"}; });
  routes.emplace_back("/other", [&](const AdminRequest&) {
    std::lock_guard<std::mutex> lock(mutex);
    return AdminResponse{.body = release_slow ? "after\n" : "before\n"};
  });
  absl::StatusOr<std::unique_ptr<AdminHttpServer>> server =
      AdminHttpServer::Start(HostPort{"127.0.0.1", 0}, std::move(routes), {"/healthz"});
  ASSERT_TRUE(server.ok()) << server.status();
  const uint16_t port = (*server)->port();

  std::future<testing::HttpResult> slow =
      std::async(std::launch::async, [port] { return testing::HttpGet(port, "/slow"); });
  {
    std::unique_lock<std::mutex> lock(mutex);
    ASSERT_TRUE(changed.wait_for(lock, std::chrono::seconds(30), [&] { return slow_started; }));
  }
  std::future<testing::HttpResult> other =
      std::async(std::launch::async, [port] { return testing::HttpGet(port, "/other"); });
  // Answered while /slow still holds the handler thread (it is released only afterwards).
  const testing::HttpResult health = testing::HttpGet(port, "/healthz");
  EXPECT_EQ(health.status, 200);
  EXPECT_EQ(health.body, "ok\n");
  {
    std::lock_guard<std::mutex> lock(mutex);
    release_slow = true;
  }
  changed.notify_all();
  EXPECT_EQ(slow.get().body, "slow\n");
  // /other ran after /slow: handlers do not overlap.
  EXPECT_EQ(other.get().body, "after\n");
}

TEST(AdminHttpServerTest, PortInUseIsAnError) {
  auto first = StartServer();
  ASSERT_NE(first, nullptr);
  auto second = AdminHttpServer::Start(HostPort{"127.0.0.1", first->port()}, {});
  EXPECT_FALSE(second.ok());
}

}  // namespace
}  // namespace meshtel::common
