// End to end: a tag override that labels istio_requests_total from a request header. The real
// binaries on 127.0.0.1 (mesh_fixture.h): the proxies capture x-user-tier
// (capture_request_headers), the collector's metrics.overrides adds it as the label user_tier on
// server-side (reporter="destination") istio_requests_total, and /metrics shows it, still valid
// for promtool.

#include <sstream>
#include <string>

#include "gtest/gtest.h"
#include "tests/e2e/mesh_fixture.h"
#include "tests/support/http_get.h"
#include "tests/support/metrics_text.h"
#include "tests/support/process.h"

namespace meshtel::e2e {
namespace {

class MetricsOverridesTest : public MeshTest {
 protected:
  std::string ExtraCollectorConfig() const override {
    return "metrics:\n"
           "  overrides:\n"
           "    - match: {metric: REQUEST_COUNT, mode: SERVER}\n"
           "      tagOverrides:\n"
           "        user_tier: {value: \"request.headers['x-user-tier']\"}\n"
           "        response_flags: {operation: REMOVE}\n";
  }
  std::string ExtraProxyConfig() const override {
    return "capture_request_headers: [X-User-Tier]\n";
  }

  // Sends `count` requests to the frontend's sidecar, with `tier` as x-user-tier unless empty.
  void Send(int count, const std::string& tier) {
    for (int i = 0; i < count; ++i) {
      std::vector<std::pair<std::string, std::string>> headers = {{"Host", "frontend.demo"}};
      if (!tier.empty()) headers.emplace_back("x-user-tier", tier);
      const testing::HttpResult result =
          testing::HttpGet(frontend_inbound_port_, "/items", headers);
      ASSERT_EQ(result.status, 200) << result.error << result.body;
    }
  }
};

TEST_F(MetricsOverridesTest, HeaderTagOverrideLabelsServerRequestCounts) {
  ASSERT_TRUE(testing::HaveProgram("promtool"))
      << "promtool (Debian's prometheus package) is required: run the README's test command";
  Send(5, "gold");
  Send(3, "silver");
  Send(2, "");
  constexpr int kRequests = 10;
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        return testing::SumSamples(Metrics(), "istio_requests_total",
                                   {"reporter=\"destination\""}) == 2 * kRequests;
      },
      seconds(30)))
      << Metrics();
  const std::string metrics = Metrics();

  // The frontend's inbound sidecar saw the header from the client.
  const std::vector<std::string> frontend = {"reporter=\"destination\"",
                                             "destination_workload=\"frontend\""};
  const auto frontend_with = [&](const std::string& fragment) {
    std::vector<std::string> fragments = frontend;
    fragments.push_back(fragment);
    return testing::SumSamples(metrics, "istio_requests_total", fragments);
  };
  EXPECT_EQ(frontend_with("user_tier=\"gold\""), 5);
  EXPECT_EQ(frontend_with("user_tier=\"silver\""), 3);
  EXPECT_EQ(frontend_with("user_tier=\"unknown\""), 2);
  // The demo frontend does not forward the header: the backend's sidecar labels it unknown.
  EXPECT_EQ(testing::SumSamples(metrics, "istio_requests_total",
                                {"reporter=\"destination\"", "destination_workload=\"backend\"",
                                 "user_tier=\"unknown\""}),
            kRequests);
  // Only the server side of istio_requests_total changed: the client side and the histograms
  // keep Istio's standard labels, response_flags included.
  for (const std::string& line :
       testing::SampleLines(metrics, "istio_requests_total", {"reporter=\"destination\""})) {
    EXPECT_EQ(line.find("response_flags="), std::string::npos) << line;
  }
  EXPECT_EQ(testing::SumSamples(metrics, "istio_requests_total",
                                {"reporter=\"source\"", "response_flags=\"-\""}),
            kRequests);
  EXPECT_TRUE(
      testing::SampleLines(metrics, "istio_requests_total", {"reporter=\"source\"", "user_tier="})
          .empty());
  EXPECT_TRUE(
      testing::SampleLines(metrics, "istio_request_duration_milliseconds_count", {"user_tier="})
          .empty());
  EXPECT_EQ(testing::SumSamples(metrics, "istio_request_duration_milliseconds_count",
                                {"reporter=\"destination\"", "response_flags=\"-\""}),
            2 * kRequests);

  // The collector tells which headers the proxies must capture.
  const testing::HttpResult capture = testing::HttpGet(admin_port_, "/api/metrics/capture-headers");
  EXPECT_EQ(capture.status, 200);
  EXPECT_EQ(capture.body, "{\"capture_request_headers\":[\"x-user-tier\"]}\n");

  // promtool still accepts the exposition (its only complaint: Istio's millisecond unit).
  testing::WriteFile(dir_ + "/metrics.txt", metrics);
  std::string promtool_output;
  const int promtool_code =
      testing::RunCommand("promtool check metrics < " + dir_ + "/metrics.txt", &promtool_output);
  EXPECT_TRUE(promtool_code == 0 || promtool_code == 3) << promtool_output;
  std::stringstream lines(promtool_output);
  for (std::string line; std::getline(lines, line);) {
    if (line.empty()) continue;
    EXPECT_EQ(line,
              "istio_request_duration_milliseconds use base unit \"seconds\" instead of "
              "\"milliseconds\"")
        << "unexpected promtool finding";
  }
}

}  // namespace
}  // namespace meshtel::e2e
