#include "collector/metrics/request_metrics.h"

#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/metrics_text.h"

namespace meshtel::collector {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

meshtel::v1::RequestRecord Record(meshtel::v1::Reporter reporter, uint32_t code,
                                  uint64_t duration_ns, uint64_t request_bytes,
                                  uint64_t response_bytes) {
  meshtel::v1::RequestRecord record;
  record.set_reporter(reporter);
  record.set_response_code(code);
  record.set_duration_ns(duration_ns);
  record.set_request_bytes(request_bytes);
  record.set_response_bytes(response_bytes);
  record.mutable_source()->set_workload("frontend");
  record.mutable_destination()->set_workload("backend");
  return record;
}

// The one sample line of `name` whose labels contain every fragment, or "" when none.
std::string FindLine(const std::string& text, const std::string& name,
                     const std::vector<std::string>& fragments) {
  const std::vector<std::string> lines = testing::SampleLines(text, name, fragments);
  EXPECT_LE(lines.size(), 1u) << name;
  return lines.empty() ? "" : lines.front();
}

std::string ValueOf(const std::string& line) { return line.substr(line.rfind(' ') + 1); }

TEST(HistogramCountsTest, BucketsAreUpperInclusive) {
  HistogramCounts histogram;
  histogram.Observe(0.5);   // le=0.5
  histogram.Observe(0.51);  // le=1
  histogram.Observe(1);     // le=1
  histogram.Observe(4e6);   // +Inf
  EXPECT_EQ(histogram.counts[0], 1u);
  EXPECT_EQ(histogram.counts[1], 2u);
  EXPECT_EQ(histogram.counts[kIstioHistogramBounds.size()], 1u);
  EXPECT_EQ(histogram.count, 4u);
  EXPECT_DOUBLE_EQ(histogram.sum, 0.5 + 0.51 + 1 + 4e6);
}

TEST(RequestMetricsTest, CountsPerLabelSet) {
  RequestMetrics metrics(4);
  for (int i = 0; i < 3; ++i)
    metrics.Record(Record(meshtel::v1::REPORTER_SOURCE, 200, 2e6, 100, 1000));
  metrics.Record(Record(meshtel::v1::REPORTER_SOURCE, 503, 2e6, 100, 1000));
  metrics.Record(Record(meshtel::v1::REPORTER_DESTINATION, 200, 2e6, 100, 1000));
  EXPECT_EQ(metrics.series_count(), 3u);
  std::string text;
  metrics.RenderText(text);
  EXPECT_EQ(ValueOf(FindLine(text, "istio_requests_total",
                             {"reporter=\"source\"", "response_code=\"200\""})),
            "3");
  EXPECT_EQ(ValueOf(FindLine(text, "istio_requests_total",
                             {"reporter=\"source\"", "response_code=\"503\""})),
            "1");
  EXPECT_EQ(ValueOf(FindLine(text, "istio_requests_total", {"reporter=\"destination\""})), "1");
}

TEST(RequestMetricsTest, HistogramsAreCumulativeWithEnvoyBounds) {
  RequestMetrics metrics(1);
  metrics.Record(Record(meshtel::v1::REPORTER_SOURCE, 200, 3'000'000, 700, 20));   // 3 ms
  metrics.Record(Record(meshtel::v1::REPORTER_SOURCE, 200, 30'000'000, 700, 20));  // 30 ms
  std::string text;
  metrics.RenderText(text);
  const std::string name = "istio_request_duration_milliseconds";
  EXPECT_THAT(text, HasSubstr("# TYPE " + name + " histogram\n"));
  EXPECT_EQ(ValueOf(FindLine(text, name + "_bucket", {"le=\"1\""})), "0");
  EXPECT_EQ(ValueOf(FindLine(text, name + "_bucket", {"le=\"5\""})), "1");
  EXPECT_EQ(ValueOf(FindLine(text, name + "_bucket", {"le=\"25\""})), "1");
  EXPECT_EQ(ValueOf(FindLine(text, name + "_bucket", {"le=\"50\""})), "2");
  EXPECT_EQ(ValueOf(FindLine(text, name + "_bucket", {"le=\"3600000\""})), "2");
  EXPECT_EQ(ValueOf(FindLine(text, name + "_bucket", {"le=\"+Inf\""})), "2");
  EXPECT_EQ(ValueOf(FindLine(text, name + "_sum", {})), "33");
  EXPECT_EQ(ValueOf(FindLine(text, name + "_count", {})), "2");
  EXPECT_EQ(ValueOf(FindLine(text, "istio_request_bytes_sum", {})), "1400");
  EXPECT_EQ(ValueOf(FindLine(text, "istio_response_bytes_bucket", {"le=\"25\""})), "2");
  // Envoy prints bounds without a trailing ".0", in increasing order, 19 + "+Inf".
  for (const char* le : {"0.5",   "1",      "5",      "10",      "25",      "50",    "100",
                         "250",   "500",    "1000",   "2500",    "5000",    "10000", "30000",
                         "60000", "300000", "600000", "1800000", "3600000", "+Inf"}) {
    EXPECT_NE(FindLine(text, name + "_bucket", {std::string("le=\"") + le + "\""}), "") << le;
  }
  EXPECT_THAT(text, Not(HasSubstr("le=\"1.0\"")));
}

TEST(RequestMetricsTest, LabelValuesAreEscaped) {
  RequestMetrics metrics(1);
  meshtel::v1::RequestRecord record = Record(meshtel::v1::REPORTER_SOURCE, 200, 1, 1, 1);
  record.mutable_source()->set_workload("we\"ird\\name\nx");
  metrics.Record(record);
  std::string text;
  metrics.RenderText(text);
  EXPECT_THAT(text, HasSubstr("source_workload=\"we\\\"ird\\\\name\\nx\""));
}

TEST(RequestMetricsTest, VisitSamplesMatchesTheTextRendering) {
  RequestMetrics metrics(4);
  metrics.Record(Record(meshtel::v1::REPORTER_SOURCE, 200, 3'000'000, 700, 20));
  metrics.Record(Record(meshtel::v1::REPORTER_SOURCE, 200, 30'000'000, 700, 20));
  metrics.Record(Record(meshtel::v1::REPORTER_DESTINATION, 503, 1'000'000, 1, 2));
  std::string text;
  metrics.RenderText(text);
  size_t samples = 0;
  metrics.VisitSamples([&](const MetricSample& sample) {
    ++samples;
    // Rebuild the text line of the sample and find it in the rendering.
    std::string line = std::string(sample.metric) + "{";
    for (size_t i = 0; i < sample.labels.size(); ++i) {
      if (i > 0) line += ",";
      line += std::string(sample.labels[i].name) + "=\"";
      AppendEscapedLabelValue(sample.labels[i].value, line);
      line += "\"";
    }
    line += "} ";
    AppendPrometheusDouble(sample.value, line);
    EXPECT_NE(text.find(line + "\n"), std::string::npos) << line;
  });
  // Two label sets, each: 1 counter + 3 histograms × (20 buckets + sum + count).
  EXPECT_EQ(samples, 2u * (1 + 3 * 22));
}

TEST(RequestMetricsTest, EmptyAggregatorRendersNothing) {
  RequestMetrics metrics;
  std::string text;
  metrics.RenderText(text);
  EXPECT_EQ(text, "");
}

TEST(RequestMetricsTest, ConcurrentRecordsAreAllCounted) {
  RequestMetrics metrics(8);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&metrics, t] {
      for (int i = 0; i < 10000; ++i) {
        metrics.Record(Record(meshtel::v1::REPORTER_SOURCE, 200 + (i % 3), 1e6, 1, 1));
      }
      (void)t;
    });
  }
  for (auto& thread : threads) thread.join();
  std::string text;
  metrics.RenderText(text);
  uint64_t total = 0;
  for (const char* code : {"200", "201", "202"}) {
    total += std::stoull(ValueOf(
        FindLine(text, "istio_requests_total", {std::string("response_code=\"") + code + "\""})));
  }
  EXPECT_EQ(total, 40000u);
}

TEST(PrometheusDoubleTest, GoStyle) {
  std::string text;
  AppendPrometheusDouble(0.5, text);
  text += " ";
  AppendPrometheusDouble(3600000, text);
  text += " ";
  AppendPrometheusDouble(1.0 / 0.0, text);
  text += " ";
  AppendPrometheusDouble(300000, text);
  text += " ";
  AppendPrometheusDouble(0.000125, text);
  text += " ";
  AppendPrometheusDouble(1e300, text);
  EXPECT_EQ(text, "0.5 3600000 +Inf 300000 0.000125 1e+300");
}

}  // namespace
}  // namespace meshtel::collector
