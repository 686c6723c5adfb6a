// End to end: the proxy's own access log. A real meshtel-proxy on 127.0.0.1 forwards requests to
// a test upstream with access_log.path set to a temporary file; the test reads the lines the
// proxy wrote (Istio's default TEXT format, then JSON), rotates the file by rename + SIGUSR1,
// and checks the proxy's access-log counter. No collector runs: the access log does not need one.

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/support/http_get.h"
#include "tests/support/metrics_text.h"
#include "tests/support/process.h"
#include "tests/support/test_http_server.h"

namespace meshtel::e2e {
namespace {

using std::chrono::seconds;
using testing::ChildProcess;

std::vector<std::string> ReadLines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

class ProxyAccessLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir("meshtel-access-log");
    log_path_ = dir_ + "/access.log";
    upstream_ = std::make_unique<testing::TestHttpServer>([](const testing::TestHttpRequest&) {
      return testing::TestHttpReply{.status = 200, .body = "hello\n"};
    });
    outbound_port_ = testing::FreePort();
    admin_port_ = testing::FreePort();
  }

  // Starts the proxy with `access_log_yaml` as the body of its access_log block.
  void StartProxy(const std::string& access_log_yaml) {
    const std::string config =
        "io_threads: 1\n"
        "drain_timeout: 500ms\n"
        "inbound: {enabled: false}\n"
        "outbound:\n"
        "  listen: \"127.0.0.1:" +
        std::to_string(outbound_port_) +
        "\"\n"
        "  routes:\n"
        "    - host: upstream.test.svc.cluster.local\n"
        "      addresses: [\"127.0.0.1:" +
        std::to_string(upstream_->port()) +
        "\"]\n"
        "admin: {listen: \"127.0.0.1:" +
        std::to_string(admin_port_) +
        "\"}\n"
        "reporter: {collector: \"127.0.0.1:" +
        std::to_string(testing::FreePort()) +
        "\", flush_interval: 20ms}\n"
        "access_log:\n" +
        access_log_yaml;
    testing::WriteFile(dir_ + "/proxy.yaml", config);
    proxy_ = ChildProcess::Start({MESHTEL_PROXY_BIN, "--config", dir_ + "/proxy.yaml"},
                                 dir_ + "/proxy.log");
    ASSERT_TRUE(testing::WaitFor([&] { return testing::CanConnect(admin_port_); }, seconds(20)))
        << proxy_->Log();
  }

  testing::HttpResult Get(const std::string& target, const std::string& host,
                          const std::string& request_id) {
    return testing::HttpGet(
        outbound_port_, target,
        {{"Host", host}, {"x-request-id", request_id}, {"User-Agent", "access-log-test/1.0"}});
  }

  bool WaitForLines(const std::string& path, size_t count) {
    return testing::WaitFor([&] { return ReadLines(path).size() >= count; }, seconds(20));
  }

  double LinesCounter(const std::string& outcome) {
    const testing::HttpResult stats = testing::HttpGet(admin_port_, "/stats/prometheus");
    return testing::SumSamples(stats.body, "meshtel_proxy_access_log_lines_total",
                               {"outcome=\"" + outcome + "\""});
  }

  std::string Upstream() const { return "127.0.0.1:" + std::to_string(upstream_->port()); }

  std::string dir_;
  std::string log_path_;
  std::unique_ptr<testing::TestHttpServer> upstream_;
  uint16_t outbound_port_ = 0;
  uint16_t admin_port_ = 0;
  std::unique_ptr<ChildProcess> proxy_;
};

TEST_F(ProxyAccessLogTest, WritesIstioDefaultTextLinesAndReopensOnSigusr1) {
  StartProxy("  path: \"" + log_path_ + "\"\n");
  EXPECT_EQ(Get("/cart?item=1", "upstream", "req-cart").status, 200);
  EXPECT_EQ(Get("/nowhere", "unknown.host", "req-nr").status, 404);
  ASSERT_TRUE(WaitForLines(log_path_, 2)) << proxy_->Log();

  const std::vector<std::string> lines = ReadLines(log_path_);
  ASSERT_EQ(lines.size(), 2u);
  const std::string& ok = lines[0];
  EXPECT_EQ(ok.rfind("[20", 0), 0u) << ok;  // [%START_TIME%]
  EXPECT_NE(ok.find("] \"GET /cart?item=1 HTTP/1.1\" 200 - "), std::string::npos) << ok;
  EXPECT_NE(ok.find(" \"access-log-test/1.0\" \"req-cart\" \"upstream\" \"" + Upstream() + "\" "),
            std::string::npos)
      << ok;
  const std::string& not_routed = lines[1];
  EXPECT_NE(not_routed.find("] \"GET /nowhere HTTP/1.1\" 404 NR "), std::string::npos)
      << not_routed;
  EXPECT_NE(not_routed.find("\"req-nr\" \"unknown.host\" \"-\" "), std::string::npos) << not_routed;
  ASSERT_TRUE(testing::WaitFor([&] { return LinesCounter("written") == 2; }, seconds(10)));
  EXPECT_EQ(LinesCounter("dropped"), 0);

  // Rotation by rename: lines keep going to the renamed file until SIGUSR1 reopens the path.
  ASSERT_EQ(std::rename(log_path_.c_str(), (log_path_ + ".1").c_str()), 0);
  EXPECT_EQ(Get("/before-reopen", "upstream", "req-3").status, 200);
  ASSERT_TRUE(WaitForLines(log_path_ + ".1", 3)) << proxy_->Log();
  ASSERT_EQ(::kill(proxy_->pid(), SIGUSR1), 0);
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        return proxy_->Log().find("access log " + log_path_ + ": reopened") != std::string::npos;
      },
      seconds(10)))
      << proxy_->Log();
  EXPECT_EQ(Get("/after-reopen", "upstream", "req-4").status, 200);
  ASSERT_TRUE(WaitForLines(log_path_, 1)) << proxy_->Log();
  EXPECT_NE(ReadLines(log_path_)[0].find("\"GET /after-reopen HTTP/1.1\" 200"), std::string::npos);
  EXPECT_EQ(ReadLines(log_path_ + ".1").size(), 3u);

  EXPECT_EQ(proxy_->Terminate(), 0);
  EXPECT_NE(proxy_->Log().find("access log: 4 lines written, 0 dropped"), std::string::npos)
      << proxy_->Log();
}

TEST_F(ProxyAccessLogTest, WritesIstioDefaultJsonLines) {
  StartProxy("  path: \"" + log_path_ + "\"\n  encoding: JSON\n");
  EXPECT_EQ(Get("/json/path", "upstream.test", "req-json").status, 200);
  ASSERT_TRUE(WaitForLines(log_path_, 1)) << proxy_->Log();
  const std::vector<std::string> lines = ReadLines(log_path_);
  ASSERT_EQ(lines.size(), 1u);
  google::protobuf::Struct object;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(lines[0], &object).ok()) << lines[0];
  const auto& fields = object.fields();
  ASSERT_EQ(fields.count("method"), 1u) << lines[0];
  EXPECT_EQ(fields.at("method").string_value(), "GET");
  EXPECT_EQ(fields.at("path").string_value(), "/json/path");
  EXPECT_EQ(fields.at("protocol").string_value(), "HTTP/1.1");
  EXPECT_EQ(fields.at("response_code").number_value(), 200);
  EXPECT_EQ(fields.at("response_flags").string_value(), "-");
  EXPECT_EQ(fields.at("request_id").string_value(), "req-json");
  EXPECT_EQ(fields.at("authority").string_value(), "upstream.test");
  EXPECT_EQ(fields.at("user_agent").string_value(), "access-log-test/1.0");
  EXPECT_EQ(fields.at("upstream_host").string_value(), Upstream());
  EXPECT_NE(fields.at("start_time").string_value(), "-");
  EXPECT_EQ(fields.size(), 24u);  // Istio's default JSON keys
  EXPECT_EQ(proxy_->Terminate(), 0);
}

TEST_F(ProxyAccessLogTest, UnknownOperatorStopsTheStartNamingIt) {
  testing::WriteFile(dir_ + "/bad.yaml", "access_log:\n  path: \"" + log_path_ +
                                             "\"\n  format: \"%REQ(:METHOD)% %BOGUS_OP%\\n\"\n");
  auto proxy =
      ChildProcess::Start({MESHTEL_PROXY_BIN, "--config", dir_ + "/bad.yaml"}, dir_ + "/bad.log");
  EXPECT_EQ(proxy->Wait(std::chrono::seconds(20)), 2);
  EXPECT_NE(proxy->Log().find("access_log.format: unknown operator %BOGUS_OP% at offset 15"),
            std::string::npos)
      << proxy->Log();
}

}  // namespace
}  // namespace meshtel::e2e
