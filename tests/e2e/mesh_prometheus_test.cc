// End to end: the real binaries on 127.0.0.1 — collector, two demo services each behind a
// meshtel-proxy, the demo load generator — and a real Prometheus (Debian's package) scraping the
// collector. What Prometheus reports must equal the requests that were sent.

#include <regex>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/e2e/mesh_fixture.h"
#include "tests/support/http_get.h"
#include "tests/support/metrics_text.h"
#include "tests/support/process.h"

namespace meshtel::e2e {
namespace {

TEST_F(MeshTest, PrometheusSeesEveryRequestWithIstioLabels) {
  ASSERT_TRUE(testing::HaveProgram("prometheus"))
      << "Debian's prometheus package is required: run the README's test command";
  constexpr int kRequests = 300;
  SendLoad(kRequests);
  ASSERT_TRUE(testing::WaitFor([&] { return SourceRequests() == kRequests; }, seconds(30)))
      << "collector counted " << SourceRequests() << " of " << kRequests;

  // The collector's own view: both reporters, with the workload identity of both sides.
  const std::string metrics = Metrics();
  EXPECT_EQ(testing::SumSamples(
                metrics, "istio_requests_total",
                {"reporter=\"source\"", "source_workload=\"frontend\"",
                 "destination_workload=\"backend\"", "destination_service_name=\"backend\"",
                 "response_code=\"200\"", "response_flags=\"-\""}),
            kRequests);
  EXPECT_EQ(testing::SumSamples(metrics, "istio_requests_total",
                                {"reporter=\"destination\"", "source_workload=\"frontend\"",
                                 "destination_workload=\"backend\""}),
            kRequests);
  // The frontend's sidecar counted the same requests, and the collector acknowledged them all.
  const std::string proxy_stats = testing::HttpGet(frontend_admin_port_, "/stats/prometheus").body;
  EXPECT_EQ(
      testing::SumSamples(proxy_stats, "meshtel_proxy_requests_total", {"direction=\"outbound\""}),
      kRequests);
  EXPECT_EQ(
      testing::SumSamples(proxy_stats, "meshtel_proxy_requests_total", {"direction=\"inbound\""}),
      kRequests);
  EXPECT_EQ(testing::HttpGet(backend_admin_port_, "/healthz/ready").status, 200);
  EXPECT_EQ(testing::SumSamples(metrics, "istio_request_duration_milliseconds_count",
                                {"reporter=\"source\""}),
            kRequests);

  // promtool: the exposition must parse. Its only allowed complaint is the lint rule that
  // durations use seconds, which Istio's own metric name breaks by design.
  const auto promtool_check = [&](const std::string& input_command) {
    std::string promtool_output;
    const int promtool_code =
        testing::RunCommand(input_command + " | promtool check metrics", &promtool_output);
    EXPECT_TRUE(promtool_code == 0 || promtool_code == 3) << promtool_output;
    std::stringstream lines(promtool_output);
    for (std::string line; std::getline(lines, line);) {
      if (line.empty()) continue;
      EXPECT_EQ(line,
                "istio_request_duration_milliseconds use base unit \"seconds\" instead of "
                "\"milliseconds\"")
          << "unexpected promtool finding";
    }
  };
  testing::WriteFile(dir_ + "/metrics.txt", metrics);
  promtool_check("cat " + dir_ + "/metrics.txt");
  // The same exposition gzipped, when the scraper allows it.
  const testing::HttpResult gzipped =
      testing::HttpGet(admin_port_, "/metrics", {{"Accept-Encoding", "gzip"}});
  EXPECT_EQ(gzipped.headers.count("content-encoding") ? gzipped.headers.at("content-encoding") : "",
            "gzip");
  EXPECT_EQ(gzipped.headers.at("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  testing::WriteFile(dir_ + "/metrics.txt.gz", gzipped.body);
  promtool_check("gzip -dc " + dir_ + "/metrics.txt.gz");
  // OpenMetrics when asked for it (Prometheus below asks for it by default and must parse it).
  const testing::HttpResult open_metrics = testing::HttpGet(
      admin_port_, "/metrics", {{"Accept", "application/openmetrics-text;version=1.0.0"}});
  EXPECT_EQ(open_metrics.headers.at("content-type"),
            "application/openmetrics-text; version=1.0.0; charset=utf-8");
  EXPECT_TRUE(open_metrics.body.ends_with("\n# EOF\n"));
  EXPECT_NE(open_metrics.body.find("# TYPE istio_requests counter\n"), std::string::npos);
  EXPECT_EQ(testing::SumSamples(open_metrics.body, "istio_requests_total", {"reporter=\"source\""}),
            kRequests);
  // The strict OpenMetrics parser of Debian's python3-prometheus-client must accept it too (it
  // checks # EOF, metadata order, counter and unit suffixes, bucket order and +Inf).
  testing::WriteFile(dir_ + "/metrics.om", open_metrics.body);
  std::string parser_output;
  EXPECT_EQ(testing::RunCommand(
                "/usr/bin/python3 -c 'import sys\n"
                "from prometheus_client.openmetrics.parser import text_string_to_metric_families\n"
                "for f in text_string_to_metric_families(sys.stdin.read()):\n"
                "    print(f.name, f.type, f.unit, len(f.samples))' < " +
                    dir_ + "/metrics.om",
                &parser_output),
            0)
      << parser_output << "\n(python3-prometheus-client is installed by scripts/install-deps.sh)";
  // Every istio_requests_total line is one sample of the parsed counter family.
  const size_t request_series =
      testing::SampleLines(open_metrics.body, "istio_requests_total", {}).size();
  EXPECT_GE(request_series, 2u);
  EXPECT_NE(parser_output.find("istio_requests counter  " + std::to_string(request_series) + "\n"),
            std::string::npos)
      << parser_output;
  EXPECT_NE(parser_output.find("istio_request_duration_milliseconds histogram milliseconds"),
            std::string::npos)
      << parser_output;

  // A real Prometheus scrapes the collector.
  const uint16_t prometheus_port = testing::FreePort();
  testing::WriteFile(dir_ + "/prometheus.yml",
                     "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
                     "scrape_configs:\n"
                     "  - job_name: meshtel-collector\n"
                     "    static_configs: [{targets: [\"127.0.0.1:" +
                         std::to_string(admin_port_) + "\"]}]\n");
  auto prometheus =
      ChildProcess::Start({"/usr/bin/prometheus", "--config.file=" + dir_ + "/prometheus.yml",
                           "--storage.tsdb.path=" + dir_ + "/prometheus-data",
                           "--web.listen-address=127.0.0.1:" + std::to_string(prometheus_port)},
                          dir_ + "/prometheus.log");
  const auto query = [&](const std::string& promql) -> std::string {
    testing::HttpResult result =
        testing::HttpGet(prometheus_port, "/api/v1/query?query=" + UrlEncode(promql));
    std::smatch match;
    static const std::regex kValue("\"value\":\\[[^,]+,\"([^\"]+)\"\\]");
    if (result.status != 200 || !std::regex_search(result.body, match, kValue)) return "";
    return match[1];
  };
  const std::string expected = std::to_string(kRequests);
  std::string seen;
  const bool converged = testing::WaitFor(
      [&] {
        seen = query("sum(istio_requests_total{reporter=\"source\"})");
        return seen == expected;
      },
      seconds(90));
  EXPECT_TRUE(converged) << "Prometheus says " << seen << ", expected " << expected << "\n"
                         << prometheus->Log().substr(0, 4000);
  EXPECT_EQ(query("sum(istio_requests_total{reporter=\"destination\",source_workload=\"frontend\","
                  "destination_workload=\"backend\",response_code=\"200\"})"),
            expected);
  EXPECT_EQ(query("sum(istio_request_duration_milliseconds_bucket{reporter=\"source\","
                  "le=\"+Inf\"})"),
            expected);
  EXPECT_EQ(query("count(up{job=\"meshtel-collector\"} == 1)"), "1");
  // Prometheus 2.42 negotiates OpenMetrics by default: its scrapes were served (and parsed) as
  // OpenMetrics, gzipped.
  const std::string open_metrics_scrapes =
      query("sum(meshtel_metrics_scrapes_total{format=\"openmetrics\",encoding=\"gzip\"})");
  EXPECT_GT(std::atof(open_metrics_scrapes.c_str()), 0) << "'" << open_metrics_scrapes << "'";
  EXPECT_EQ(query("count(istio_build{component=\"proxy\"})"), "1");
  EXPECT_EQ(query("meshtel_metrics_series{metric=\"istio_requests_total\"}"),
            std::to_string(static_cast<int>(
                testing::SampleLines(metrics, "istio_requests_total", {}).size())));
  EXPECT_EQ(query("sum(meshtel_metrics_series_overflow_total)"), "0");
  EXPECT_EQ(prometheus->Terminate(), 0);

  // Everything stops cleanly on SIGTERM.
  EXPECT_EQ(frontend_proxy_->Terminate(), 0) << frontend_proxy_->Log();
  EXPECT_EQ(backend_proxy_->Terminate(), 0) << backend_proxy_->Log();
  EXPECT_EQ(collector_->Terminate(), 0) << collector_->Log();
  EXPECT_NE(collector_->Log().find("store closed"), std::string::npos);
}

TEST_F(MeshTest, TrafficFlowsWhileTheCollectorIsDownAndRecordsArriveLater) {
  SendLoad(50);
  ASSERT_TRUE(testing::WaitFor([&] { return SourceRequests() == 50; }, seconds(30)));
  EXPECT_EQ(collector_->Terminate(), 0);

  SendLoad(120);  // every request is answered with the collector gone

  StartCollector();  // a new collector: the proxies resend what was never acknowledged
  ASSERT_TRUE(testing::WaitFor([&] { return SourceRequests() == 120; }, seconds(30)))
      << "collector counted " << SourceRequests();
  // Nothing arrives twice.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_EQ(SourceRequests(), 120);
}

TEST_F(MeshTest, LabelSetsPastTheLimitShareTheOverflowSeriesAndIdleSeriesExpire) {
  // The mesh makes three label sets (frontend inbound, frontend outbound, backend inbound).
  EXPECT_EQ(collector_->Terminate(), 0);
  std::string config;
  ASSERT_EQ(testing::RunCommand("cat " + dir_ + "/collector.yaml", &config), 0);
  testing::WriteFile(dir_ + "/collector.yaml",
                     config + "metrics: {max_series_per_metric: 1, series_idle_timeout: 5s}\n");
  StartCollector();
  constexpr int kRequests = 20;
  SendLoad(kRequests);
  // Every record is counted: one label set in its own series, the two others in the overflow
  // series.
  std::string metrics;
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        metrics = Metrics();
        return testing::SumSamples(metrics, "istio_requests_total", {}) == 3 * kRequests;
      },
      seconds(30)))
      << metrics;
  const std::vector<std::string> overflow =
      testing::SampleLines(metrics, "istio_requests_total", {"reporter=\"__overflow__\""});
  ASSERT_EQ(overflow.size(), 1u) << metrics;
  EXPECT_NE(overflow.front().find("source_workload=\"__overflow__\""), std::string::npos);
  EXPECT_EQ(testing::SampleValue(overflow.front()), 2 * kRequests);
  EXPECT_EQ(testing::SampleLines(metrics, "istio_requests_total", {}).size(), 2u);
  EXPECT_EQ(testing::SumSamples(metrics, "meshtel_metrics_series_overflow_total",
                                {"metric=\"istio_requests_total\""}),
            2 * kRequests);
  EXPECT_EQ(testing::SumSamples(metrics, "meshtel_metrics_series_overflow_total",
                                {"metric=\"istio_response_bytes\""}),
            2 * kRequests);
  EXPECT_EQ(
      testing::SumSamples(metrics, "meshtel_metrics_series", {"metric=\"istio_requests_total\""}),
      1);
  // No traffic: after 5 s idle (checked every second) every series goes, the overflow too.
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        metrics = Metrics();
        return testing::SampleLines(metrics, "istio_requests_total", {}).empty();
      },
      seconds(30)))
      << metrics;
  EXPECT_EQ(
      testing::SumSamples(metrics, "meshtel_metrics_series", {"metric=\"istio_requests_total\""}),
      0);
  EXPECT_EQ(testing::SampleLines(metrics, "istio_request_duration_milliseconds_count", {}).size(),
            0u);
  // A new request brings its series back, from zero.
  SendLoad(1);
  ASSERT_TRUE(testing::WaitFor(
      [&] { return testing::SumSamples(Metrics(), "istio_requests_total", {}) == 3; },
      seconds(30)));
}

TEST(CollectorCommandLineTest, BadConfigNamesTheFieldAndExits2) {
  const std::string dir = testing::MakeTempDir("meshtel-cli");
  testing::WriteFile(dir + "/bad.yaml", "ingest:\n  max_batch_bytes: 12\n");
  std::string output;
  EXPECT_EQ(testing::RunCommand(
                std::string(MESHTEL_COLLECTOR_BIN) + " --config " + dir + "/bad.yaml", &output),
            2);
  EXPECT_NE(output.find("ingest.max_batch_bytes: 12 is not in"), std::string::npos) << output;
  EXPECT_EQ(testing::RunCommand(std::string(MESHTEL_PROXY_BIN) + " --config " + dir + "/bad.yaml",
                                &output),
            2);
  EXPECT_NE(output.find("ingest: unknown key"), std::string::npos) << output;
  EXPECT_EQ(testing::RunCommand(std::string(MESHTEL_COLLECTOR_BIN) + " --version", &output), 0);
  EXPECT_EQ(output, "meshtel-collector 0.1.0\n");
  EXPECT_EQ(testing::RunCommand(std::string(MESHTEL_PROXY_BIN) + " --help", &output), 0);
  EXPECT_NE(output.find("Usage: meshtel-proxy"), std::string::npos);
  EXPECT_EQ(testing::RunCommand(std::string(MESHTEL_PROXY_BIN) + " --bogus", &output), 2);
}

}  // namespace
}  // namespace meshtel::e2e
