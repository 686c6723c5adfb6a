// End to end: the real binaries on 127.0.0.1 (collector, two demo services behind meshtel-proxy,
// the demo load generator — tests/e2e/mesh_fixture.h) and a real Prometheus (Debian's package)
// that does NOT scrape the collector but receives its metrics by remote write
// (--web.enable-remote-write-receiver). What Prometheus then answers must equal what was sent.

#include <cstdlib>
#include <regex>
#include <string>

#include "gtest/gtest.h"
#include "tests/e2e/mesh_fixture.h"
#include "tests/support/http_get.h"
#include "tests/support/metrics_text.h"
#include "tests/support/process.h"

namespace meshtel::e2e {
namespace {

TEST_F(MeshTest, RemoteWriteDeliversEveryRequestAndHistogramToPrometheus) {
  ASSERT_TRUE(testing::HaveProgram("prometheus"))
      << "Debian's prometheus package is required: run the README's test command";
  // Prometheus as a remote write receiver, with no scrape configuration at all.
  const uint16_t prometheus_port = testing::FreePort();
  testing::WriteFile(dir_ + "/prometheus.yml", "global: {evaluation_interval: 1s}\n");
  auto prometheus = ChildProcess::Start(
      {"/usr/bin/prometheus", "--config.file=" + dir_ + "/prometheus.yml",
       "--storage.tsdb.path=" + dir_ + "/prometheus-data", "--web.enable-remote-write-receiver",
       "--web.listen-address=127.0.0.1:" + std::to_string(prometheus_port)},
      dir_ + "/prometheus.log");
  ASSERT_TRUE(testing::WaitFor(
      [&] { return testing::HttpGet(prometheus_port, "/-/ready").status == 200; }, seconds(60)))
      << prometheus->Log();

  // The collector again, now pushing to Prometheus every second.
  EXPECT_EQ(collector_->Terminate(), 0);
  std::string config;
  ASSERT_EQ(testing::RunCommand("cat " + dir_ + "/collector.yaml", &config), 0);
  testing::WriteFile(dir_ + "/collector.yaml",
                     config + "metrics:\n  remote_write:\n    - url: \"http://127.0.0.1:" +
                         std::to_string(prometheus_port) +
                         "/api/v1/write\"\n      interval: 1s\n"
                         "      headers: {X-Scope-OrgID: e2e}\n");
  StartCollector();

  constexpr int kRequests = 200;
  SendLoad(kRequests);
  std::string metrics;
  // Each request makes three records: the load generator's call as seen by the frontend's
  // sidecar (destination), and frontend → backend from both sidecars (source, destination).
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        metrics = Metrics();
        return testing::SumSamples(metrics, "istio_requests_total", {}) == 3 * kRequests;
      },
      seconds(30)))
      << metrics;
  ASSERT_EQ(SourceRequests(), kRequests);

  const auto query = [&](const std::string& promql) -> std::string {
    testing::HttpResult result =
        testing::HttpGet(prometheus_port, "/api/v1/query?query=" + UrlEncode(promql));
    std::smatch match;
    static const std::regex kValue("\"value\":\\[[^,]+,\"([^\"]+)\"\\]");
    if (result.status != 200 || !std::regex_search(result.body, match, kValue)) return "";
    return match[1];
  };
  const std::string records = std::to_string(3 * kRequests);
  std::string seen;
  EXPECT_TRUE(testing::WaitFor(
      [&] {
        seen = query("sum(istio_requests_total)");
        return seen == records;
      },
      seconds(60)))
      << "Prometheus says '" << seen << "', expected " << records << "\n"
      << prometheus->Log().substr(0, 4000) << "\n"
      << collector_->Log();
  EXPECT_EQ(query("sum(istio_requests_total{reporter=\"source\",source_workload=\"frontend\","
                  "destination_workload=\"backend\",response_code=\"200\"})"),
            std::to_string(kRequests));
  // Histograms arrive as their classic series: buckets, _count and _sum equal the collector's.
  EXPECT_EQ(query("sum(istio_request_duration_milliseconds_bucket{reporter=\"source\","
                  "le=\"+Inf\"})"),
            std::to_string(kRequests));
  EXPECT_EQ(query("sum(istio_request_duration_milliseconds_count)"), records);
  for (const char* le : {"1", "5", "25", "250"}) {
    const std::string fragment = std::string("le=\"") + le + "\"";
    EXPECT_EQ(
        std::atof(
            query("sum(istio_request_duration_milliseconds_bucket{" + fragment + "})").c_str()),
        testing::SumSamples(metrics, "istio_request_duration_milliseconds_bucket", {fragment}))
        << le;
  }
  const double bytes_sum = testing::SumSamples(metrics, "istio_response_bytes_sum", {});
  EXPECT_GT(bytes_sum, 0);
  EXPECT_DOUBLE_EQ(std::atof(query("sum(istio_response_bytes_sum)").c_str()), bytes_sum);
  EXPECT_DOUBLE_EQ(std::atof(query("sum(istio_request_duration_milliseconds_sum)").c_str()),
                   testing::SumSamples(metrics, "istio_request_duration_milliseconds_sum", {}));
  // Nothing was scraped: every series came by remote write.
  EXPECT_EQ(query("count(up)"), "");
  // The collector's own meshtel_* metrics come along, as /metrics shows them.
  EXPECT_EQ(query("meshtel_metrics_series{metric=\"istio_requests_total\"}"),
            std::to_string(static_cast<int>(
                testing::SampleLines(metrics, "istio_requests_total", {}).size())));
  EXPECT_TRUE(testing::WaitFor(
      [&] {
        return std::atof(
                   query("sum(meshtel_remote_write_samples_total{outcome=\"sent\"})").c_str()) > 0;
      },
      seconds(30)));
  // The collector's own account of it.
  const std::string after = Metrics();
  EXPECT_GT(testing::SumSamples(after, "meshtel_remote_write_samples_total", {"outcome=\"sent\""}),
            0);
  EXPECT_EQ(
      testing::SumSamples(after, "meshtel_remote_write_samples_total", {"outcome=\"dropped\""}), 0);
  EXPECT_GT(testing::SumSamples(after, "meshtel_remote_write_requests_total", {"code=\"204\""}), 0);

  EXPECT_EQ(prometheus->Terminate(), 0);
  EXPECT_EQ(frontend_proxy_->Terminate(), 0) << frontend_proxy_->Log();
  EXPECT_EQ(backend_proxy_->Terminate(), 0) << backend_proxy_->Log();
  EXPECT_EQ(collector_->Terminate(), 0) << collector_->Log();
  EXPECT_NE(collector_->Log().find("store closed"), std::string::npos);
}

}  // namespace
}  // namespace meshtel::e2e
