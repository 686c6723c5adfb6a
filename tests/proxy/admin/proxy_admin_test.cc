#include "proxy/admin/proxy_admin.h"

#include "gtest/gtest.h"
#include "tests/support/http_get.h"
#include "tests/support/metrics_text.h"
#include "tests/support/process.h"

namespace meshtel::proxy {
namespace {

double Sample(const std::string& text, const std::string& name,
              const std::vector<std::string>& fragments = {}) {
  if (fragments.empty()) {
    const std::string key = "\n" + name + " ";
    const size_t at = text.find(key);
    return at == std::string::npos ? -1 : std::stod(text.substr(at + key.size()));
  }
  return testing::SumSamples(text, name, fragments);
}

TEST(ProxyAdminTest, ServesTheProxyCountersAndReadiness) {
  ReporterConfig reporter_config;
  reporter_config.collectors = {
      common::HostPort{"127.0.0.1", testing::FreePort()}};  // no collector
  reporter_config.flush_interval = absl::Milliseconds(10);
  RecordReporter reporter(reporter_config, "admin-test");

  ProxyConfig config;
  config.io_threads = 1;
  config.inbound.enabled = false;
  config.outbound.listen = common::HostPort{"127.0.0.1", 0};
  RouteConfig dead;
  dead.host = "dead.test.svc.cluster.local";
  dead.addresses = {common::HostPort{"127.0.0.1", testing::FreePort()}};
  config.outbound.routes = {dead};
  config.drain_timeout = absl::Milliseconds(100);
  auto server = ProxyServer::Start(config, reporter);
  ASSERT_TRUE(server.ok()) << server.status();
  auto admin = ProxyAdmin::Start(common::HostPort{"127.0.0.1", 0}, **server, reporter);
  ASSERT_TRUE(admin.ok()) << admin.status();

  EXPECT_EQ(testing::HttpGet((*server)->outbound_port(), "/", {{"Host", "nowhere"}}).status, 404);
  EXPECT_EQ(testing::HttpGet((*server)->outbound_port(), "/", {{"Host", "dead"}}).status, 503);
  EXPECT_EQ(testing::HttpGet((*server)->outbound_port(), "/",
                             {{"Host", "dead"}, {"traceparent", "bogus"}})
                .status,
            503);
  ASSERT_TRUE(
      testing::WaitFor([&] { return reporter.unacked_bytes() > 0; }, std::chrono::seconds(10)));

  testing::HttpResult stats = testing::HttpGet((*admin)->port(), "/stats/prometheus");
  ASSERT_EQ(stats.status, 200);
  EXPECT_EQ(stats.headers["content-type"], "text/plain; version=0.0.4; charset=utf-8");
  const std::string& text = stats.body;
  EXPECT_EQ(Sample(text, "meshtel_proxy_requests_total", {"direction=\"outbound\""}), 3);
  EXPECT_EQ(Sample(text, "meshtel_proxy_requests_total", {"direction=\"inbound\""}), 0);
  EXPECT_EQ(Sample(text, "meshtel_proxy_response_flags_total",
                   {"direction=\"outbound\"", "response_flag=\"NR\""}),
            1);
  EXPECT_EQ(Sample(text, "meshtel_proxy_response_flags_total",
                   {"direction=\"outbound\"", "response_flag=\"UF\""}),
            2);
  EXPECT_EQ(Sample(text, "meshtel_proxy_invalid_trace_context_total"), 1);
  EXPECT_EQ(Sample(text, "meshtel_proxy_records_submitted_total"), 3);
  EXPECT_EQ(Sample(text, "meshtel_proxy_records_acked_total"), 0);
  EXPECT_GT(Sample(text, "meshtel_proxy_records_buffered_bytes"), 0);
  const std::string collector =
      "collector=\"" + reporter_config.collectors.front().ToString() + "\"";
  EXPECT_EQ(Sample(text, "meshtel_proxy_collector_connected", {collector}), 0);
  EXPECT_GT(Sample(text, "meshtel_proxy_collector_buffered_bytes", {collector}), 0);
  EXPECT_EQ(Sample(text, "meshtel_proxy_records_failed_over_total"), 0);
  EXPECT_EQ(Sample(text, "meshtel_proxy_upstream_connections"), 0);
  EXPECT_EQ(Sample(text, "meshtel_proxy_upstream_connections_idle"), 0);
  EXPECT_EQ(Sample(text, "meshtel_proxy_active_requests"), 0);

  EXPECT_EQ(testing::HttpGet((*admin)->port(), "/healthz/ready").status, 200);
  (*server)->Shutdown();
  EXPECT_EQ(testing::HttpGet((*admin)->port(), "/healthz/ready").status, 503);
}

}  // namespace
}  // namespace meshtel::proxy
