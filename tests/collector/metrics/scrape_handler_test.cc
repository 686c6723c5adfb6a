#include "collector/metrics/scrape_handler.h"

#include <atomic>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "collector/common/admin_http_server.h"
#include "collector/common/gzip.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/http_get.h"
#include "tests/support/metrics_text.h"

namespace meshtel::collector {
namespace {

using ::testing::EndsWith;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

std::string Gunzip(const std::string& data) {
  absl::StatusOr<std::string> plain = meshtel::common::GzipDecompress(data, size_t{1} << 32);
  EXPECT_TRUE(plain.ok()) << plain.status();
  return plain.ok() ? *std::move(plain) : std::string();
}

// A scrape endpoint served by the real admin HTTP server on a free loopback port.
class ScrapeHandlerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    meshtel::v1::RequestRecord record;
    record.set_reporter(meshtel::v1::REPORTER_SOURCE);
    record.set_response_code(200);
    record.mutable_source()->set_workload("we\"ird\n\xFF");
    metrics_.Record(record);
    handler_ = std::make_unique<ScrapeHandler>(metrics_, registry_);
    std::vector<std::pair<std::string, common::AdminHandler>> routes;
    routes.emplace_back("/metrics", [this](const common::AdminRequest& request) {
      return handler_->Serve(request);
    });
    auto server = common::AdminHttpServer::Start({"127.0.0.1", 0}, std::move(routes));
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
  }

  testing::HttpResult Scrape(const std::vector<std::pair<std::string, std::string>>& headers) {
    testing::HttpResult result = testing::HttpGet(server_->port(), "/metrics", headers);
    EXPECT_EQ(result.status, 200) << result.error;
    return result;
  }

  prometheus::Registry registry_;
  RequestMetrics metrics_{{.build_tag = "1.2.3", .registry = &registry_}};
  std::unique_ptr<ScrapeHandler> handler_;
  std::unique_ptr<common::AdminHttpServer> server_;
};

TEST_F(ScrapeHandlerTest, PlainScrapeIsText004) {
  const testing::HttpResult result = Scrape({});
  EXPECT_EQ(result.headers.at("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(result.headers.count("content-encoding"), 0u);
  EXPECT_THAT(result.body, HasSubstr("# TYPE istio_requests_total counter\n"));
  EXPECT_THAT(result.body, HasSubstr("source_workload=\"we\\\"ird\\n\xEF\xBF\xBD\""));
  EXPECT_THAT(result.body, HasSubstr("# TYPE meshtel_metrics_series gauge\n"));
  EXPECT_THAT(result.body, Not(HasSubstr("# EOF")));
  EXPECT_THAT(result.body, EndsWith("\n"));
  EXPECT_EQ(testing::SumSamples(result.body, "meshtel_metrics_scrapes_total",
                                {"format=\"text\"", "encoding=\"identity\""}),
            1);
}

TEST_F(ScrapeHandlerTest, OpenMetricsWhenAskedEndsWithEof) {
  const testing::HttpResult result = Scrape(
      {{"Accept",
        "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"}});
  EXPECT_EQ(result.headers.at("content-type"),
            "application/openmetrics-text; version=1.0.0; charset=utf-8");
  EXPECT_THAT(result.body, StartsWith("# HELP istio_requests "));
  EXPECT_THAT(result.body, HasSubstr("# TYPE istio_requests counter\n"));
  EXPECT_THAT(result.body, HasSubstr("# TYPE meshtel_metrics_scrapes counter\n"));
  EXPECT_THAT(result.body, HasSubstr("# TYPE meshtel_metrics_series_overflow counter\n"));
  EXPECT_THAT(result.body, HasSubstr("# UNIT istio_request_bytes bytes\n"));
  EXPECT_THAT(result.body, EndsWith("\n# EOF\n"));
  EXPECT_EQ(result.body.find("# EOF"), result.body.size() - 6);  // once, at the very end
  EXPECT_THAT(result.body, Not(HasSubstr("\r")));
  EXPECT_EQ(testing::SumSamples(result.body, "meshtel_metrics_scrapes_total",
                                {"format=\"openmetrics\"", "encoding=\"identity\""}),
            1);
}

TEST_F(ScrapeHandlerTest, GzipWhenAllowedInEitherFormat) {
  const std::string plain = Scrape({}).body;
  const testing::HttpResult text = Scrape({{"Accept-Encoding", "gzip"}});
  EXPECT_EQ(text.headers.at("content-encoding"), "gzip");
  const std::string text_body = Gunzip(text.body);
  EXPECT_THAT(text_body, HasSubstr("# TYPE istio_requests_total counter\n"));
  // The same exposition as uncompressed, apart from the scrape counters.
  EXPECT_EQ(testing::SampleLines(text_body, "istio_request_bytes_bucket", {}),
            testing::SampleLines(plain, "istio_request_bytes_bucket", {}));

  const testing::HttpResult open_metrics =
      Scrape({{"Accept", "application/openmetrics-text"}, {"Accept-Encoding", "deflate, gzip"}});
  EXPECT_EQ(open_metrics.headers.at("content-encoding"), "gzip");
  EXPECT_EQ(open_metrics.headers.at("content-type"),
            "application/openmetrics-text; version=1.0.0; charset=utf-8");
  const std::string open_metrics_body = Gunzip(open_metrics.body);
  EXPECT_THAT(open_metrics_body, EndsWith("\n# EOF\n"));
  EXPECT_EQ(testing::SumSamples(open_metrics_body, "meshtel_metrics_scrapes_total",
                                {"format=\"openmetrics\"", "encoding=\"gzip\""}),
            1);

  const testing::HttpResult refused = Scrape({{"Accept-Encoding", "gzip;q=0"}});
  EXPECT_EQ(refused.headers.count("content-encoding"), 0u);
  EXPECT_THAT(refused.body, StartsWith("# HELP"));
}

// Two threads record as fast as they can while the test scrapes over HTTP: every scrape parses,
// counts only grow, each series' request counter agrees with its histogram count within one
// scrape, and the last scrape counts every record exactly once.
TEST_F(ScrapeHandlerTest, ScrapesWhileIngestingAtFullSpeedStayConsistentAndEndExact) {
  constexpr int kPerThread = 1000000;
  std::atomic<int> writers_done{0};
  std::vector<std::thread> writers;
  for (int w = 0; w < 2; ++w) {
    writers.emplace_back([&, w] {
      meshtel::v1::RequestRecord record;
      record.set_reporter(meshtel::v1::REPORTER_DESTINATION);
      for (int i = 0; i < kPerThread; ++i) {
        record.mutable_source()->set_workload("client-" + std::to_string((w * 7 + i) % 20));
        record.set_response_code(i % 10 == 0 ? 503 : 200);
        record.set_duration_ns(static_cast<uint64_t>(i % 1000) * 1'000'000);
        metrics_.Record(record);
      }
      writers_done.fetch_add(1);
    });
  }
  double previous = 0;
  int scrapes_during_ingest = 0;
  for (bool last = false; !last;) {
    last = writers_done.load() == 2;  // one more scrape after the writers finished
    const std::string text = Scrape({}).body;
    ASSERT_THAT(text, HasSubstr("# TYPE istio_requests_total counter"));
    const double requests = testing::SumSamples(text, "istio_requests_total", {});
    const double counted =
        testing::SumSamples(text, "istio_request_duration_milliseconds_count", {});
    EXPECT_EQ(requests, counted) << "a scrape saw a series half updated";
    EXPECT_GE(requests, previous);
    previous = requests;
    if (!last) ++scrapes_during_ingest;
  }
  for (auto& writer : writers) writer.join();
  EXPECT_EQ(previous, 2.0 * kPerThread + 1);  // +1: the fixture's record
  std::printf("%d scrapes while ingesting\n", scrapes_during_ingest);
  EXPECT_GE(scrapes_during_ingest, 1);
}

}  // namespace
}  // namespace meshtel::collector
