#include "collector/metrics/request_metrics.h"

#include <malloc.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include "collector/config/collector_config.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "prometheus/registry.h"
#include "tests/support/metrics_text.h"
#include "yaml-cpp/yaml.h"

// Counts heap allocations of this test binary (the hot-path test reads it).
namespace {
std::atomic<uint64_t> g_allocations{0};
}  // namespace

void* operator new(std::size_t size) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
// Not inlined, so the compiler never pairs a new-expression with free() at a call site.
[[gnu::noinline]] void operator delete(void* p) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete(void* p, std::size_t) noexcept { std::free(p); }

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
  RequestMetrics metrics({.shard_count = 4});
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
  RequestMetrics metrics({.shard_count = 1});
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
  RequestMetrics metrics({.shard_count = 1});
  meshtel::v1::RequestRecord record = Record(meshtel::v1::REPORTER_SOURCE, 200, 1, 1, 1);
  record.mutable_source()->set_workload("we\"ird\\name\nx");
  metrics.Record(record);
  std::string text;
  metrics.RenderText(text);
  EXPECT_THAT(text, HasSubstr("source_workload=\"we\\\"ird\\\\name\\nx\""));
}

TEST(RequestMetricsTest, VisitSamplesMatchesTheTextRendering) {
  RequestMetrics metrics({.shard_count = 4});
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
  // Two label sets, each: 1 counter + 3 histograms × (20 buckets + sum + count); istio_build.
  EXPECT_EQ(samples, 2u * (1 + 3 * 22) + 1);
}

TEST(RequestMetricsTest, LabelTextLargerThanTheRenderBufferRendersWhole) {
  // 300 KB of label text: larger than the renderer's buffer, so each row takes the slow path.
  RequestMetrics metrics({.build_tag = ""});
  auto record = Record(meshtel::v1::REPORTER_SOURCE, 200, 2'000'000, 1, 2);
  const std::string huge(300'000, 'w');
  record.mutable_source()->set_workload(huge);
  metrics.Record(record);
  metrics.Record(Record(meshtel::v1::REPORTER_SOURCE, 200, 2'000'000, 1, 2));
  std::string text;
  metrics.RenderText(text);
  EXPECT_EQ(ValueOf(FindLine(text, "istio_requests_total", {"source_workload=\"" + huge + "\""})),
            "1");
  EXPECT_EQ(ValueOf(FindLine(text, "istio_response_bytes_bucket",
                             {"source_workload=\"" + huge + "\"", "le=\"+Inf\""})),
            "1");
  EXPECT_EQ(
      ValueOf(FindLine(text, "istio_response_bytes_count", {"source_workload=\"" + huge + "\""})),
      "1");
  EXPECT_EQ(testing::SumSamples(text, "istio_request_bytes_sum", {}), 2);
  // Every line is whole: 2 label sets × 67 samples, 4 × (HELP + TYPE).
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 2 * 67 + 8);
}

TEST(RequestMetricsTest, EmptyAggregatorRendersOnlyTheBuild) {
  RequestMetrics without_build({.build_tag = ""});
  std::string text;
  without_build.RenderText(text);
  EXPECT_EQ(text, "");
  RequestMetrics metrics({.build_tag = "1.2.3"});
  metrics.RenderText(text);
  EXPECT_EQ(text,
            "# HELP istio_build The build of the meshtel proxies reporting to this collector.\n"
            "# TYPE istio_build gauge\n"
            "istio_build{component=\"proxy\",tag=\"1.2.3\"} 1\n");
}

TEST(RequestMetricsTest, ConcurrentRecordsAreAllCounted) {
  RequestMetrics metrics({.shard_count = 8});
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

// The label names of a sample line, in order ("name{a=\"x\",b=\"y\"} 1" → {a, b}).
std::vector<std::string> LabelNames(const std::string& line) {
  std::vector<std::string> names;
  size_t at = line.find('{');
  const size_t end = line.rfind('}');
  while (at != std::string::npos && at < end) {
    const size_t equals = line.find('=', at + 1);
    names.push_back(line.substr(at + 1, equals - at - 1));
    // Skip the quoted value, honouring escapes.
    size_t i = equals + 2;
    while (line[i] != '"') i += line[i] == '\\' ? 2 : 1;
    at = line[i + 1] == ',' ? i + 1 : std::string::npos;
  }
  return names;
}

// wire-facts §8.2: the HTTP/gRPC request labels, in the filter's emission order.
const std::vector<std::string> kRequestLabelTable = {"reporter",
                                                     "source_workload",
                                                     "source_canonical_service",
                                                     "source_canonical_revision",
                                                     "source_workload_namespace",
                                                     "source_principal",
                                                     "source_app",
                                                     "source_version",
                                                     "source_cluster",
                                                     "destination_workload",
                                                     "destination_workload_namespace",
                                                     "destination_principal",
                                                     "destination_app",
                                                     "destination_version",
                                                     "destination_service",
                                                     "destination_canonical_service",
                                                     "destination_canonical_revision",
                                                     "destination_service_name",
                                                     "destination_service_namespace",
                                                     "destination_cluster",
                                                     "request_protocol",
                                                     "response_code",
                                                     "grpc_response_status",
                                                     "response_flags",
                                                     "connection_security_policy"};

// wire-facts §8.2: the gRPC message counters carry only reporter and the source_*/destination_*
// labels.
std::vector<std::string> MessageLabelTable() {
  std::vector<std::string> names;
  for (const std::string& name : kRequestLabelTable) {
    if (name == "reporter" || name.starts_with("source_") || name.starts_with("destination_")) {
      names.push_back(name);
    }
  }
  return names;
}

meshtel::v1::RequestRecord GrpcRecord(meshtel::v1::Reporter reporter, uint64_t request_messages,
                                      uint64_t response_messages) {
  meshtel::v1::RequestRecord record = Record(reporter, 200, 1'000'000, 10, 20);
  record.set_request_protocol(meshtel::v1::REQUEST_PROTOCOL_GRPC);
  record.set_grpc_status(0);
  record.set_request_messages(request_messages);
  record.set_response_messages(response_messages);
  return record;
}

// The value of `family{metric="<metric>"}` in a prometheus-cpp registry, or -1 when absent.
double RegistryValue(const prometheus::Registry& registry, const std::string& family,
                     const std::string& metric) {
  for (const prometheus::MetricFamily& f : registry.Collect()) {
    if (f.name != family) continue;
    for (const prometheus::ClientMetric& m : f.metric) {
      for (const auto& label : m.label) {
        if (label.name == "metric" && label.value == metric) {
          return f.type == prometheus::MetricType::Counter ? m.counter.value : m.gauge.value;
        }
      }
    }
  }
  return -1;
}

TEST(RequestMetricsTest, LabelSetsMatchTheIstioTable) {
  RequestMetrics metrics({.build_tag = "1.2.3"});
  metrics.Record(Record(meshtel::v1::REPORTER_SOURCE, 200, 1'000'000, 1, 1));
  metrics.Record(GrpcRecord(meshtel::v1::REPORTER_DESTINATION, 1, 1));
  std::string text;
  metrics.RenderText(text);
  std::vector<std::string> with_le = kRequestLabelTable;
  with_le.push_back("le");
  for (const std::string name : {"istio_requests_total", "istio_request_duration_milliseconds_sum",
                                 "istio_request_duration_milliseconds_count",
                                 "istio_request_bytes_sum", "istio_response_bytes_count"}) {
    const auto lines = testing::SampleLines(text, name, {});
    ASSERT_EQ(lines.size(), 2u) << name;
    for (const std::string& line : lines) EXPECT_EQ(LabelNames(line), kRequestLabelTable) << line;
  }
  for (const std::string name : {"istio_request_duration_milliseconds_bucket",
                                 "istio_request_bytes_bucket", "istio_response_bytes_bucket"}) {
    const auto lines = testing::SampleLines(text, name, {});
    ASSERT_EQ(lines.size(), 2u * 20) << name;
    for (const std::string& line : lines) EXPECT_EQ(LabelNames(line), with_le) << line;
  }
  ASSERT_EQ(MessageLabelTable().size(), 20u);
  for (const std::string name : {"istio_request_messages_total", "istio_response_messages_total"}) {
    const auto lines = testing::SampleLines(text, name, {});
    ASSERT_EQ(lines.size(), 1u) << name;  // the gRPC record only
    EXPECT_EQ(LabelNames(lines.front()), MessageLabelTable()) << lines.front();
  }
  const auto build = testing::SampleLines(text, "istio_build", {});
  ASSERT_EQ(build.size(), 1u);
  EXPECT_EQ(LabelNames(build.front()), (std::vector<std::string>{"component", "tag"}));
  EXPECT_EQ(build.front(), "istio_build{component=\"proxy\",tag=\"1.2.3\"} 1");
}

TEST(RequestMetricsTest, BothReportersWithUnknownAndLatestDefaults) {
  RequestMetrics metrics;
  meshtel::v1::RequestRecord source;
  source.set_reporter(meshtel::v1::REPORTER_SOURCE);
  meshtel::v1::RequestRecord destination;
  destination.set_reporter(meshtel::v1::REPORTER_DESTINATION);
  metrics.Record(source);
  metrics.Record(destination);
  metrics.Record(destination);
  std::string text;
  metrics.RenderText(text);
  const std::string defaults =
      "source_workload=\"unknown\",source_canonical_service=\"unknown\","
      "source_canonical_revision=\"latest\",source_workload_namespace=\"unknown\","
      "source_principal=\"unknown\",source_app=\"unknown\",source_version=\"unknown\","
      "source_cluster=\"unknown\",destination_workload=\"unknown\","
      "destination_workload_namespace=\"unknown\",destination_principal=\"unknown\","
      "destination_app=\"unknown\",destination_version=\"unknown\","
      "destination_service=\"unknown\",destination_canonical_service=\"unknown\","
      "destination_canonical_revision=\"latest\",destination_service_name=\"unknown\","
      "destination_service_namespace=\"unknown\",destination_cluster=\"unknown\","
      "request_protocol=\"http\",response_code=\"0\",grpc_response_status=\"\","
      "response_flags=\"-\",connection_security_policy=";
  EXPECT_THAT(
      text, HasSubstr("istio_requests_total{reporter=\"source\"," + defaults + "\"unknown\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("istio_requests_total{reporter=\"destination\"," + defaults +
                              "\"none\"} 2\n"));
}

TEST(RequestMetricsTest, GrpcMessagesAreCountedPerLabelSet) {
  RequestMetrics metrics;
  metrics.Record(GrpcRecord(meshtel::v1::REPORTER_SOURCE, 3, 4));
  metrics.Record(GrpcRecord(meshtel::v1::REPORTER_SOURCE, 5, 6));
  meshtel::v1::RequestRecord failed = GrpcRecord(meshtel::v1::REPORTER_SOURCE, 1, 0);
  failed.set_grpc_status(14);  // another request series, the same message series
  metrics.Record(failed);
  metrics.Record(GrpcRecord(meshtel::v1::REPORTER_DESTINATION, 7, 0));
  metrics.Record(Record(meshtel::v1::REPORTER_SOURCE, 200, 1, 1, 1));  // plain HTTP: no messages
  EXPECT_EQ(metrics.series_count(), 4u);
  EXPECT_EQ(metrics.message_series_count(), 2u);
  std::string text;
  metrics.RenderText(text);
  EXPECT_THAT(text, HasSubstr("# TYPE istio_request_messages_total counter\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE istio_response_messages_total counter\n"));
  EXPECT_EQ(ValueOf(FindLine(text, "istio_request_messages_total", {"reporter=\"source\""})), "9");
  EXPECT_EQ(ValueOf(FindLine(text, "istio_response_messages_total", {"reporter=\"source\""})),
            "10");
  EXPECT_EQ(ValueOf(FindLine(text, "istio_request_messages_total", {"reporter=\"destination\""})),
            "7");
  EXPECT_EQ(ValueOf(FindLine(text, "istio_requests_total",
                             {"reporter=\"source\"", "grpc_response_status=\"14\""})),
            "1");
  EXPECT_EQ(ValueOf(FindLine(text, "istio_requests_total",
                             {"reporter=\"source\"", "request_protocol=\"grpc\"",
                              "grpc_response_status=\"0\""})),
            "2");
}

TEST(RequestMetricsTest, OpenMetricsRendering) {
  RequestMetrics metrics({.build_tag = "1.2.3"});
  metrics.Record(Record(meshtel::v1::REPORTER_SOURCE, 200, 3'000'000, 700, 20));   // 3 ms
  metrics.Record(Record(meshtel::v1::REPORTER_SOURCE, 200, 30'000'000, 700, 20));  // 30 ms
  metrics.Record(GrpcRecord(meshtel::v1::REPORTER_SOURCE, 2, 3));
  std::string text;
  metrics.Render(ExpositionFormat::kOpenMetrics, text);
  // Counter metadata names the family; samples keep _total.
  EXPECT_THAT(text, HasSubstr("# TYPE istio_requests counter\n"));
  EXPECT_THAT(text, Not(HasSubstr("# TYPE istio_requests_total")));
  EXPECT_THAT(text, HasSubstr("# TYPE istio_request_messages counter\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE istio_response_messages counter\n"));
  EXPECT_EQ(testing::SampleLines(text, "istio_requests_total", {}).size(), 2u);
  // Units where the name ends with one.
  EXPECT_THAT(text, HasSubstr("# TYPE istio_request_duration_milliseconds histogram\n"
                              "# UNIT istio_request_duration_milliseconds milliseconds\n"));
  EXPECT_THAT(text, HasSubstr("# UNIT istio_request_bytes bytes\n"));
  EXPECT_THAT(text, HasSubstr("# UNIT istio_response_bytes bytes\n"));
  // Canonical bounds.
  const std::string name = "istio_request_duration_milliseconds_bucket";
  const std::string http = "request_protocol=\"http\"";
  EXPECT_EQ(ValueOf(FindLine(text, name, {http, "le=\"1.0\""})), "0");
  EXPECT_EQ(ValueOf(FindLine(text, name, {http, "le=\"5.0\""})), "1");
  EXPECT_EQ(ValueOf(FindLine(text, name, {http, "le=\"0.5\""})), "0");
  EXPECT_EQ(ValueOf(FindLine(text, name, {http, "le=\"3600000.0\""})), "2");
  EXPECT_EQ(ValueOf(FindLine(text, name, {http, "le=\"+Inf\""})), "2");
  EXPECT_THAT(text, Not(HasSubstr("le=\"1\"")));
  EXPECT_THAT(text, HasSubstr("# TYPE istio_build gauge\nistio_build{component=\"proxy\","
                              "tag=\"1.2.3\"} 1\n"));
  // Only HELP, TYPE and UNIT comments (the caller adds # EOF after the collector's own metrics).
  std::stringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (line.starts_with("#")) {
      EXPECT_TRUE(line.starts_with("# HELP ") || line.starts_with("# TYPE ") ||
                  line.starts_with("# UNIT "))
          << line;
    }
  }
}

TEST(RequestMetricsTest, InvalidUtf8IsRepairedBeforeKeyingSeries) {
  RequestMetrics metrics;
  meshtel::v1::RequestRecord a = Record(meshtel::v1::REPORTER_SOURCE, 200, 1, 1, 1);
  a.mutable_source()->set_workload(
      "front\xFF"
      "end");
  meshtel::v1::RequestRecord b = a;
  b.mutable_source()->set_workload(
      "front\xFE"
      "end");  // repairs to the same text
  metrics.Record(a);
  metrics.Record(b);
  EXPECT_EQ(metrics.series_count(), 1u);
  std::string text;
  metrics.RenderText(text);
  EXPECT_EQ(ValueOf(FindLine(text, "istio_requests_total",
                             {"source_workload=\"front\xEF\xBF\xBD"
                              "end\""})),
            "2");
  EXPECT_THAT(text, Not(HasSubstr("\xFF")));
  size_t visited = 0;
  metrics.VisitSamples([&](const MetricSample& sample) {
    for (const SampleLabel& label : sample.labels) {
      if (label.name == "source_workload") {
        EXPECT_EQ(label.value,
                  "front\xEF\xBF\xBD"
                  "end");
        ++visited;
      }
    }
  });
  EXPECT_GT(visited, 0u);
}

TEST(RequestMetricsTest, UpdatingExistingSeriesAllocatesNothing) {
  prometheus::Registry registry;
  RequestMetrics metrics({.registry = &registry});
  std::vector<meshtel::v1::RequestRecord> records;
  for (uint32_t code : {200u, 404u, 503u}) {
    records.push_back(Record(meshtel::v1::REPORTER_SOURCE, code, 2'000'000, 10, 20));
    records.push_back(GrpcRecord(meshtel::v1::REPORTER_DESTINATION, 2, 1));
    records.back().set_response_code(code);
  }
  records.back().mutable_source()->set_workload("not utf-8 \xFF, repaired");
  records.back().set_response_flags(uint64_t{1} << meshtel::v1::RESPONSE_FLAG_NO_ROUTE_FOUND);
  for (const auto& record : records) metrics.Record(record);  // creates the series
  const uint64_t before = g_allocations.load();
  for (int round = 0; round < 100; ++round) {
    for (const auto& record : records) metrics.Record(record);
  }
  const uint64_t allocations = g_allocations.load() - before;
  EXPECT_EQ(allocations, 0u);
  // The count is live: a new label set allocates its series.
  const uint64_t before_new = g_allocations.load();
  metrics.Record(Record(meshtel::v1::REPORTER_SOURCE, 201, 1, 1, 1));
  EXPECT_GT(g_allocations.load(), before_new);
  EXPECT_EQ(metrics.series_count(), records.size() + 1);
  std::string text;
  metrics.RenderText(text);
  EXPECT_EQ(testing::SumSamples(text, "istio_requests_total", {}), 101.0 * records.size() + 1);
}

TEST(RequestMetricsCardinalityTest, NewLabelSetsPastTheLimitGoToOneOverflowSeries) {
  prometheus::Registry registry;
  RequestMetrics metrics({.max_series_per_metric = 3, .registry = &registry});
  for (int i = 0; i < 10; ++i) {
    meshtel::v1::RequestRecord record = GrpcRecord(meshtel::v1::REPORTER_SOURCE, 1, 2);
    record.mutable_source()->set_workload("w" + std::to_string(i));
    metrics.Record(record);
  }
  // An existing label set keeps updating its own series.
  meshtel::v1::RequestRecord first = GrpcRecord(meshtel::v1::REPORTER_SOURCE, 1, 2);
  first.mutable_source()->set_workload("w0");
  metrics.Record(first);

  EXPECT_EQ(metrics.series_count(), 3u);
  EXPECT_EQ(metrics.message_series_count(), 3u);
  std::string text;
  metrics.RenderText(text);
  EXPECT_EQ(testing::SampleLines(text, "istio_requests_total", {}).size(), 4u);
  EXPECT_EQ(ValueOf(FindLine(text, "istio_requests_total", {"source_workload=\"w0\""})), "2");
  // The overflow series: every label is __overflow__, and it holds the 7 overflowed records.
  std::string overflow_labels;
  for (size_t i = 0; i < kRequestLabelTable.size(); ++i) {
    overflow_labels += (i ? "," : "") + kRequestLabelTable[i] + "=\"__overflow__\"";
  }
  EXPECT_THAT(text, HasSubstr("istio_requests_total{" + overflow_labels + "} 7\n"));
  EXPECT_THAT(text,
              HasSubstr("istio_request_duration_milliseconds_count{" + overflow_labels + "} 7\n"));
  EXPECT_EQ(ValueOf(FindLine(text, "istio_response_messages_total", {"reporter=\"__overflow__\""})),
            "14");
  // Nothing is lost: the series sum to every record.
  EXPECT_EQ(testing::SumSamples(text, "istio_requests_total", {}), 11);

  for (const std::string metric :
       {"istio_requests_total", "istio_request_duration_milliseconds", "istio_request_bytes",
        "istio_response_bytes", "istio_request_messages_total", "istio_response_messages_total"}) {
    EXPECT_EQ(RegistryValue(registry, "meshtel_metrics_series_overflow_total", metric), 7)
        << metric;
    EXPECT_EQ(RegistryValue(registry, "meshtel_metrics_series", metric), 3) << metric;
  }
}

TEST(RequestMetricsCardinalityTest, HundredThousandLabelValuesStayAtTheLimitInBoundedMemory) {
  constexpr uint64_t kLimit = 1000;
  constexpr int kDistinct = 100000;
  prometheus::Registry registry;
  RequestMetrics metrics({.max_series_per_metric = kLimit, .registry = &registry});
  meshtel::v1::RequestRecord record = Record(meshtel::v1::REPORTER_SOURCE, 200, 1'000'000, 1, 1);
  const auto record_distinct = [&](int i) {
    record.mutable_source()->set_workload("workload-" + std::to_string(i));
    metrics.Record(record);
  };
  // Warm the thread-local buffers and the overflow series, then measure from a full table.
  for (uint64_t i = 0; i <= kLimit; ++i) record_distinct(static_cast<int>(i));
  const struct mallinfo2 full = mallinfo2();
  for (int i = static_cast<int>(kLimit) + 1; i < kDistinct; ++i) record_distinct(i);
  const struct mallinfo2 after = mallinfo2();

  EXPECT_EQ(metrics.series_count(), kLimit);
  EXPECT_EQ(RegistryValue(registry, "meshtel_metrics_series", "istio_requests_total"), kLimit);
  EXPECT_EQ(
      RegistryValue(registry, "meshtel_metrics_series_overflow_total", "istio_requests_total"),
      kDistinct - static_cast<double>(kLimit));
  // 99k more label sets left the heap where it was (give or take allocator noise).
  const double grown = static_cast<double>(after.uordblks + after.hblkhd) -
                       static_cast<double>(full.uordblks + full.hblkhd);
  EXPECT_LT(grown, 64 * 1024) << "heap grew by " << grown << " bytes";
  std::string text;
  metrics.RenderText(text);
  EXPECT_EQ(testing::SampleLines(text, "istio_requests_total", {}).size(), kLimit + 1);
  EXPECT_EQ(testing::SumSamples(text, "istio_requests_total", {}), kDistinct);
}

TEST(RequestMetricsExpiryTest, IdleSeriesAreRemovedAndComeBackFromZero) {
  prometheus::Registry registry;
  RequestMetrics metrics({.registry = &registry});
  meshtel::v1::RequestRecord old_record = GrpcRecord(meshtel::v1::REPORTER_SOURCE, 1, 1);
  old_record.mutable_source()->set_workload("old");
  meshtel::v1::RequestRecord fresh_record = GrpcRecord(meshtel::v1::REPORTER_SOURCE, 1, 1);
  fresh_record.mutable_source()->set_workload("fresh");
  metrics.Record(old_record, 1000);
  metrics.Record(old_record, 2000);
  metrics.Record(fresh_record, 9000);
  EXPECT_EQ(metrics.series_count(), 2u);

  // Idle for exactly the timeout: kept. One millisecond more: removed (both tables).
  EXPECT_EQ(metrics.ExpireIdle(7000, 5000), 0u);
  EXPECT_EQ(metrics.ExpireIdle(7001, 5000), 2u);
  EXPECT_EQ(metrics.series_count(), 1u);
  EXPECT_EQ(metrics.message_series_count(), 1u);
  EXPECT_EQ(RegistryValue(registry, "meshtel_metrics_series", "istio_requests_total"), 1);
  EXPECT_EQ(RegistryValue(registry, "meshtel_metrics_series", "istio_request_messages_total"), 1);
  std::string text;
  metrics.RenderText(text);
  EXPECT_EQ(FindLine(text, "istio_requests_total", {"source_workload=\"old\""}), "");
  EXPECT_EQ(ValueOf(FindLine(text, "istio_requests_total", {"source_workload=\"fresh\""})), "1");

  metrics.Record(old_record, 10000);
  text.clear();
  metrics.RenderText(text);
  EXPECT_EQ(ValueOf(FindLine(text, "istio_requests_total", {"source_workload=\"old\""})), "1");
}

TEST(RequestMetricsExpiryTest, ExpiryMakesRoomBelowTheLimitAndRemovesAnIdleOverflowSeries) {
  RequestMetrics metrics({.max_series_per_metric = 1});
  meshtel::v1::RequestRecord a = Record(meshtel::v1::REPORTER_SOURCE, 200, 1, 1, 1);
  meshtel::v1::RequestRecord b = Record(meshtel::v1::REPORTER_SOURCE, 404, 1, 1, 1);
  metrics.Record(a, 0);
  metrics.Record(b, 0);  // overflow
  std::string text;
  metrics.RenderText(text);
  EXPECT_EQ(testing::SampleLines(text, "istio_requests_total", {"__overflow__"}).size(), 1u);
  EXPECT_EQ(metrics.ExpireIdle(100, 50), 2u);  // a and the overflow series
  EXPECT_EQ(metrics.series_count(), 0u);
  metrics.Record(b, 200);  // room again: b gets its own series
  text.clear();
  metrics.RenderText(text);
  EXPECT_EQ(ValueOf(FindLine(text, "istio_requests_total", {"response_code=\"404\""})), "1");
  EXPECT_EQ(testing::SampleLines(text, "istio_requests_total", {"__overflow__"}).size(), 0u);
}

// ---- Tag overrides, disabled metrics, keep list (metric_overrides.h) ---------------------------

// The plans of a `metrics:` block as a user writes it in the collector config.
std::shared_ptr<const MetricLabelPlans> Plans(const std::string& metrics_yaml) {
  absl::StatusOr<CollectorConfig> config =
      ParseCollectorConfig(YAML::Load("metrics:\n" + metrics_yaml));
  EXPECT_TRUE(config.ok()) << config.status();
  if (!config.ok()) return nullptr;
  absl::StatusOr<MetricLabelPlans> plans = config->metrics.CompileLabelPlans();
  EXPECT_TRUE(plans.ok()) << plans.status();
  if (!plans.ok()) return nullptr;
  return std::make_shared<const MetricLabelPlans>(*std::move(plans));
}

meshtel::v1::RequestRecord WithHeader(meshtel::v1::RequestRecord record, const std::string& name,
                                      const std::string& value) {
  auto* header = record.add_captured_headers();
  header->set_name(name);
  header->set_value(value);
  return record;
}

TEST(RequestMetricsOverridesTest, UpsertFromAHeaderOnServerRecordsOnly) {
  RequestMetrics metrics({.label_plans = Plans(R"(
  overrides:
    - match: {metric: REQUEST_COUNT, mode: SERVER}
      tagOverrides:
        user_tier: {value: "request.headers['x-user-tier']"}
)")});
  const auto server = Record(meshtel::v1::REPORTER_DESTINATION, 200, 1'000'000, 1, 2);
  const auto client = Record(meshtel::v1::REPORTER_SOURCE, 200, 1'000'000, 1, 2);
  metrics.Record(WithHeader(server, "x-user-tier", "gold"));
  metrics.Record(WithHeader(server, "x-user-tier", "gold"));
  metrics.Record(WithHeader(server, "x-user-tier", "silver"));
  metrics.Record(server);                                     // no header: unknown
  metrics.Record(WithHeader(client, "x-user-tier", "gold"));  // CLIENT: no such label
  std::string text;
  metrics.RenderText(text);
  EXPECT_EQ(ValueOf(FindLine(text, "istio_requests_total",
                             {"reporter=\"destination\"", "user_tier=\"gold\"}"})),
            "2");
  EXPECT_EQ(ValueOf(FindLine(text, "istio_requests_total",
                             {"reporter=\"destination\"", "user_tier=\"silver\"}"})),
            "1");
  EXPECT_EQ(ValueOf(FindLine(text, "istio_requests_total",
                             {"reporter=\"destination\"", "user_tier=\"unknown\"}"})),
            "1");
  const std::string client_line = FindLine(text, "istio_requests_total", {"reporter=\"source\""});
  EXPECT_EQ(ValueOf(client_line), "1");
  EXPECT_THAT(client_line, Not(HasSubstr("user_tier")));
  // The other metrics keep Istio's labels: the three server label sets are one series there.
  EXPECT_EQ(testing::SampleLines(text, "istio_request_duration_milliseconds_count",
                                 {"reporter=\"destination\""})
                .size(),
            1u);
  EXPECT_EQ(testing::SampleLines(text, "istio_request_bytes_count", {"user_tier"}).size(), 0u);
  EXPECT_EQ(
      testing::SampleLines(text, "istio_request_duration_milliseconds_count", {"user_tier"}).size(),
      0u);
  EXPECT_EQ(ValueOf(FindLine(text, "istio_request_duration_milliseconds_count",
                             {"reporter=\"destination\""})),
            "4");
  // istio_requests_total has a table of its own, counted against the limit on its own.
  EXPECT_EQ(metrics.series_count(), 4u);
}

TEST(RequestMetricsOverridesTest, UpsertReplacesAStandardValueInPlace) {
  RequestMetrics metrics({.label_plans = Plans(R"(
  overrides:
    - tagOverrides:
        destination_service: {value: upstream.host}
        response_code: {value: "'any'"}
)")});
  auto record = Record(meshtel::v1::REPORTER_SOURCE, 200, 1'000'000, 1, 2);
  record.set_upstream_host("10.1.2.3:8080");
  metrics.Record(record);
  record.set_response_code(503);
  metrics.Record(record);
  std::string text;
  metrics.RenderText(text);
  const std::string line = FindLine(text, "istio_requests_total", {});
  EXPECT_THAT(line, HasSubstr(",destination_service=\"10.1.2.3:8080\",destination_canonical_"));
  EXPECT_THAT(line, HasSubstr(",request_protocol=\"http\",response_code=\"any\","
                              "grpc_response_status=\"\""));
  EXPECT_EQ(ValueOf(line), "2");
}

TEST(RequestMetricsOverridesTest, RemoveMergesSeriesThatDifferedOnlyByTheLabel) {
  RequestMetrics metrics({.label_plans = Plans(R"(
  overrides:
    - tagOverrides:
        response_code: {operation: REMOVE}
        response_flags: {operation: REMOVE}
)")});
  for (uint32_t code : {200u, 200u, 404u, 503u}) {
    auto record = Record(meshtel::v1::REPORTER_SOURCE, code, 2'000'000, 1, 2);
    if (code == 503) {
      record.set_response_flags(uint64_t{1} << meshtel::v1::RESPONSE_FLAG_NO_HEALTHY_UPSTREAM);
    }
    metrics.Record(record);
  }
  std::string text;
  metrics.RenderText(text);
  EXPECT_THAT(text, Not(HasSubstr("response_code=")));
  EXPECT_THAT(text, Not(HasSubstr("response_flags=")));
  EXPECT_EQ(ValueOf(FindLine(text, "istio_requests_total", {})), "4");
  EXPECT_EQ(ValueOf(FindLine(text, "istio_request_duration_milliseconds_count", {})), "4");
  EXPECT_EQ(ValueOf(FindLine(text, "istio_request_duration_milliseconds_bucket", {"le=\"5\""})),
            "4");
  EXPECT_EQ(metrics.series_count(), 1u);
}

TEST(RequestMetricsOverridesTest, DisabledMetricsAreNeitherRecordedNorRendered) {
  RequestMetrics metrics({.label_plans = Plans(R"(
  overrides:
    - match: {metric: REQUEST_DURATION}
      disabled: true
    - match: {metric: GRPC_RESPONSE_MESSAGES, mode: CLIENT}
      disabled: true
)")});
  metrics.Record(Record(meshtel::v1::REPORTER_SOURCE, 200, 2'000'000, 1, 2));
  metrics.Record(GrpcRecord(meshtel::v1::REPORTER_SOURCE, 3, 4));
  metrics.Record(GrpcRecord(meshtel::v1::REPORTER_DESTINATION, 5, 6));
  std::string text;
  metrics.RenderText(text);
  EXPECT_THAT(text, Not(HasSubstr("istio_request_duration_milliseconds")));
  EXPECT_EQ(testing::SumSamples(text, "istio_requests_total", {}), 3);
  EXPECT_EQ(testing::SumSamples(text, "istio_request_bytes_count", {}), 3);
  EXPECT_EQ(testing::SumSamples(text, "istio_request_messages_total", {}), 8);
  EXPECT_EQ(testing::SumSamples(text, "istio_response_messages_total", {"reporter=\"source\""}), 0);
  EXPECT_EQ(
      testing::SumSamples(text, "istio_response_messages_total", {"reporter=\"destination\""}), 6);
  size_t samples = 0;
  metrics.VisitSamples([&](const MetricSample& sample) {
    ++samples;
    EXPECT_THAT(std::string(sample.metric), Not(HasSubstr("duration")));
  });
  // 3 label sets × (1 counter + 2 histograms × 22); 2 + 1 message samples; istio_build.
  EXPECT_EQ(samples, 3u * 45 + 3 + 1);
}

TEST(RequestMetricsOverridesTest, KeepListLeavesOnlyTheListedLabels) {
  RequestMetrics metrics({.label_plans = Plans(R"(
  keep_labels: [reporter, destination_workload, response_code, user_tier]
  overrides:
    - tagOverrides: {user_tier: {value: "request.headers['x-user-tier']"}}
)")});
  for (const char* source : {"a", "b", "c"}) {
    auto record = Record(meshtel::v1::REPORTER_DESTINATION, 200, 2'000'000, 1, 2);
    record.mutable_source()->set_workload(source);
    metrics.Record(WithHeader(record, "x-user-tier", "gold"));
  }
  metrics.Record(GrpcRecord(meshtel::v1::REPORTER_SOURCE, 1, 1));
  std::string text;
  metrics.RenderText(text);
  EXPECT_EQ(FindLine(text, "istio_requests_total", {"reporter=\"destination\""}),
            "istio_requests_total{reporter=\"destination\",destination_workload=\"backend\","
            "response_code=\"200\",user_tier=\"gold\"} 3");
  EXPECT_EQ(
      FindLine(text, "istio_response_bytes_bucket", {"reporter=\"destination\"", "le=\"+Inf\""}),
      "istio_response_bytes_bucket{reporter=\"destination\",destination_workload=\"backend\","
      "response_code=\"200\",user_tier=\"gold\",le=\"+Inf\"} 3");
  EXPECT_EQ(FindLine(text, "istio_request_messages_total", {}),
            "istio_request_messages_total{reporter=\"source\",destination_workload=\"backend\","
            "user_tier=\"unknown\"} 1");
  EXPECT_EQ(metrics.series_count(), 2u);
}

TEST(RequestMetricsOverridesTest, SeriesWithoutAnyLabelRenderValidText) {
  RequestMetrics metrics({.build_tag = "", .label_plans = Plans("  keep_labels: []\n")});
  metrics.Record(Record(meshtel::v1::REPORTER_SOURCE, 200, 2'000'000, 1, 2));
  metrics.Record(Record(meshtel::v1::REPORTER_DESTINATION, 404, 2'000'000, 1, 2));
  std::string text;
  metrics.RenderText(text);
  EXPECT_THAT(text, HasSubstr("\nistio_requests_total 2\n"));
  EXPECT_THAT(text, HasSubstr("\nistio_request_bytes_bucket{le=\"0.5\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("\nistio_request_bytes_bucket{le=\"+Inf\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("\nistio_request_bytes_sum 2\n"));
  EXPECT_THAT(text, HasSubstr("\nistio_request_bytes_count 2\n"));
}

TEST(RequestMetricsOverridesTest, ClientAndServerLabelNamesNeverShareASeries) {
  // Client records get `a`, server records `b`; with reporter removed, equal values must still
  // make two series, each with its own names.
  RequestMetrics metrics({.label_plans = Plans(R"(
  overrides:
    - tagOverrides: {reporter: {operation: REMOVE}}
    - match: {mode: CLIENT}
      tagOverrides: {a: {value: "'x'"}}
    - match: {mode: SERVER}
      tagOverrides: {b: {value: "'x'"}}
)")});
  metrics.Record(Record(meshtel::v1::REPORTER_SOURCE, 200, 2'000'000, 1, 2));
  metrics.Record(Record(meshtel::v1::REPORTER_DESTINATION, 200, 2'000'000, 1, 2));
  std::string text;
  metrics.RenderText(text);
  EXPECT_EQ(ValueOf(FindLine(text, "istio_requests_total", {",a=\"x\""})), "1");
  EXPECT_EQ(ValueOf(FindLine(text, "istio_requests_total", {",b=\"x\""})), "1");
  EXPECT_THAT(text, Not(HasSubstr("reporter=")));
  EXPECT_EQ(metrics.series_count(), 2u);
}

TEST(RequestMetricsOverridesTest, OverflowSeriesCarryThePlansLabelNames) {
  prometheus::Registry registry;
  RequestMetrics metrics({.max_series_per_metric = 1,
                          .registry = &registry,
                          .label_plans = Plans("  keep_labels: [reporter, source_workload]\n")});
  for (const char* source : {"a", "b", "c"}) {
    auto record = Record(meshtel::v1::REPORTER_SOURCE, 200, 2'000'000, 1, 2);
    record.mutable_source()->set_workload(source);
    metrics.Record(record);
  }
  std::string text;
  metrics.RenderText(text);
  EXPECT_EQ(FindLine(text, "istio_requests_total", {"__overflow__"}),
            "istio_requests_total{reporter=\"__overflow__\",source_workload=\"__overflow__\"} 2");
  EXPECT_EQ(
      RegistryValue(registry, "meshtel_metrics_series_overflow_total", "istio_requests_total"), 2);
}

TEST(RequestMetricsOverridesTest, UpdatingExistingSeriesAllocatesNothing) {
  RequestMetrics metrics({.label_plans = Plans(R"(
  overrides:
    - match: {metric: REQUEST_COUNT}
      tagOverrides:
        user_tier: {value: "request.headers['x-user-tier']"}
        method: {value: request.method}
        response_flags: {operation: REMOVE}
    - match: {mode: CLIENT}
      tagOverrides: {path: {value: request.url_path}}
)")});
  std::vector<meshtel::v1::RequestRecord> records;
  for (uint32_t code : {200u, 503u}) {
    auto record = Record(meshtel::v1::REPORTER_SOURCE, code, 2'000'000, 10, 20);
    record.set_method("GET");
    record.set_path("/api/items?page=2");
    records.push_back(WithHeader(record, "x-user-tier", "gold"));
    records.push_back(GrpcRecord(meshtel::v1::REPORTER_DESTINATION, 2, 1));
    records.back().set_response_code(code);
  }
  records.back().mutable_source()->set_workload("not utf-8 \xFF, repaired");
  auto bad_header = Record(meshtel::v1::REPORTER_SOURCE, 200, 2'000'000, 10, 20);
  records.push_back(WithHeader(bad_header, "x-user-tier", "bad \xC3 utf-8"));
  for (const auto& record : records) metrics.Record(record);  // creates the series
  const uint64_t before = g_allocations.load();
  for (int round = 0; round < 100; ++round) {
    for (const auto& record : records) metrics.Record(record);
  }
  EXPECT_EQ(g_allocations.load() - before, 0u);
  std::string text;
  metrics.RenderText(text);
  EXPECT_EQ(testing::SumSamples(text, "istio_requests_total", {}), 101.0 * records.size());
  EXPECT_EQ(
      testing::SumSamples(text, "istio_requests_total", {"user_tier=\"bad \xEF\xBF\xBD utf-8\""}),
      101.0);
}

}  // namespace
}  // namespace meshtel::collector

// ---- TCP metrics (records from Envoy ALS tcp_logs) ----------------------------------------------

namespace meshtel::collector {
namespace {

meshtel::v1::RequestRecord TcpRecord(uint64_t received, uint64_t sent) {
  meshtel::v1::RequestRecord record =
      Record(meshtel::v1::REPORTER_SOURCE, 0, 3'000'000'000, received, sent);
  record.set_request_protocol(meshtel::v1::REQUEST_PROTOCOL_TCP);
  return record;
}

// Per-record plans (a workload's telemetry policy): records of one workload counted with its
// plans, the others with the defaults, in one exposition with one # TYPE per family.
TEST(RequestMetricsPerRecordPlansTest, WorkloadsWithTheirOwnPlansShareTheFamilies) {
  RequestMetrics metrics;
  const auto disabled = Plans(R"(
  overrides:
    - match: {metric: REQUEST_COUNT}
      disabled: true
)");
  const auto tagged = Plans(R"(
  overrides:
    - match: {metric: REQUEST_COUNT}
      tagOverrides:
        user_tier: {value: "request.headers['x-user-tier']"}
)");
  auto record_of = [](const std::string& workload) {
    meshtel::v1::RequestRecord record =
        Record(meshtel::v1::REPORTER_DESTINATION, 200, 1'000'000, 10, 20);
    record.mutable_destination()->set_workload(workload);
    return record;
  };
  metrics.Record(record_of("plain"));
  metrics.Record(record_of("plain"));
  metrics.Record(record_of("quiet"), *disabled);
  metrics.Record(WithHeader(record_of("gold"), "x-user-tier", "gold"), *tagged);
  std::string text;
  metrics.RenderText(text);
  for (const std::string family : {"istio_requests_total", "istio_request_duration_milliseconds",
                                   "istio_request_bytes", "istio_response_bytes"}) {
    size_t type_lines = 0;
    for (size_t at = text.find("# TYPE " + family + " "); at != std::string::npos;
         at = text.find("# TYPE " + family + " ", at + 1)) {
      ++type_lines;
    }
    EXPECT_EQ(type_lines, 1u) << family;
  }
  EXPECT_EQ(testing::SumSamples(text, "istio_requests_total", {"destination_workload=\"plain\""}),
            2);
  EXPECT_EQ(FindLine(text, "istio_requests_total", {"destination_workload=\"quiet\""}), "");
  EXPECT_EQ(testing::SumSamples(text, "istio_request_duration_milliseconds_count",
                                {"destination_workload=\"quiet\""}),
            1);
  EXPECT_EQ(testing::SumSamples(text, "istio_requests_total",
                                {"destination_workload=\"gold\"", "user_tier=\"gold\""}),
            1);
  // The tagged workload's other metrics keep the standard labels.
  EXPECT_THAT(FindLine(text, "istio_request_bytes_count", {"destination_workload=\"gold\""}),
              Not(HasSubstr("user_tier")));
  EXPECT_EQ(metrics.series_count(), 2u);  // plain and gold count requests; quiet does not
  size_t request_samples = 0;
  metrics.VisitSamples([&](const MetricSample& sample) {
    if (sample.metric == "istio_requests_total") ++request_samples;
  });
  EXPECT_EQ(request_samples, 2u);
}

TEST(RequestMetricsPerRecordPlansTest, UpdatingExistingSeriesWithOtherPlansAllocatesNothing) {
  RequestMetrics metrics;
  const auto tagged = Plans(R"(
  overrides:
    - tagOverrides:
        user_tier: {value: "request.headers['x-user-tier']"}
)");
  const meshtel::v1::RequestRecord record = WithHeader(
      Record(meshtel::v1::REPORTER_DESTINATION, 200, 1'000'000, 10, 20), "x-user-tier", "gold");
  metrics.Record(record, *tagged);
  metrics.Record(record);
  const uint64_t before = g_allocations.load();
  for (int i = 0; i < 100; ++i) {
    metrics.Record(record, *tagged);
    metrics.Record(record);
  }
  EXPECT_EQ(g_allocations.load(), before);
  EXPECT_EQ(metrics.series_count(), 2u);
}

TEST(RequestMetricsTcpTest, ClosedConnectionsAndBytesWithTheTcpLabels) {
  RequestMetrics metrics({.build_tag = ""});
  metrics.Record(TcpRecord(1000, 2000));
  metrics.Record(TcpRecord(10, 20));
  std::string text;
  metrics.RenderText(text);
  EXPECT_EQ(ValueOf(FindLine(text, "istio_tcp_sent_bytes_total", {})), "2020");
  EXPECT_EQ(ValueOf(FindLine(text, "istio_tcp_received_bytes_total", {})), "1010");
  EXPECT_EQ(ValueOf(FindLine(text, "istio_tcp_connections_opened_total", {})), "2");
  EXPECT_EQ(ValueOf(FindLine(text, "istio_tcp_connections_closed_total", {})), "2");
  EXPECT_THAT(text, HasSubstr("# TYPE istio_tcp_sent_bytes_total counter\n"));
  // No request metrics from TCP records.
  EXPECT_THAT(text, Not(HasSubstr("istio_requests_total")));
  // The request labels without response_code and grpc_response_status: 23, in Istio's order.
  std::vector<std::string> tcp_labels = kRequestLabelTable;
  std::erase(tcp_labels, "response_code");
  std::erase(tcp_labels, "grpc_response_status");
  ASSERT_EQ(tcp_labels.size(), 23u);
  for (const std::string name :
       {"istio_tcp_sent_bytes_total", "istio_tcp_received_bytes_total",
        "istio_tcp_connections_opened_total", "istio_tcp_connections_closed_total"}) {
    const std::string line = FindLine(text, name, {});
    EXPECT_EQ(LabelNames(line), tcp_labels) << line;
    EXPECT_THAT(line, HasSubstr("request_protocol=\"tcp\""));
  }
  // VisitSamples (remote write) sees the same samples.
  size_t tcp_samples = 0;
  metrics.VisitSamples([&](const MetricSample& sample) {
    if (sample.metric.starts_with("istio_tcp_")) ++tcp_samples;
  });
  EXPECT_EQ(tcp_samples, 4u);
  EXPECT_EQ(metrics.ExpireIdle(RequestMetrics::NowMs() + 1'000'000, 1), 1u);
}

TEST(RequestMetricsTcpTest, OverridesNameTheTcpMetrics) {
  RequestMetrics metrics({.build_tag = "", .label_plans = Plans(R"(
  overrides:
    - match: {metric: TCP_OPENED_CONNECTIONS}
      disabled: true
    - match: {metric: TCP_SENT_BYTES}
      tagOverrides:
        response_flags: {operation: REMOVE}
)")});
  metrics.Record(TcpRecord(1, 2));
  std::string text;
  metrics.RenderText(text);
  EXPECT_THAT(text, Not(HasSubstr("istio_tcp_connections_opened_total")));
  EXPECT_THAT(FindLine(text, "istio_tcp_sent_bytes_total", {}), Not(HasSubstr("response_flags")));
  EXPECT_THAT(FindLine(text, "istio_tcp_received_bytes_total", {}), HasSubstr("response_flags"));
}

}  // namespace
}  // namespace meshtel::collector
