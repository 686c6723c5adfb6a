#include "collector/metrics/remote_write.h"

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "collector/config/collector_config.h"
#include "collector/metrics/exposition.h"
#include "collector/metrics/request_metrics.h"
#include "fmt/format.h"
#include "fmt/ranges.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/descriptor.pb.h"
#include "google/protobuf/dynamic_message.h"
#include "google/protobuf/message.h"
#include "gtest/gtest.h"
#include "prometheus/counter.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"
#include "prometheus/remote.pb.h"
#include "prometheus/summary.h"
#include "prometheus/text_serializer.h"
#include "snappy.h"
#include "tests/support/metrics_text.h"
#include "tests/support/official_schema.h"
#include "tests/support/process.h"
#include "tests/support/test_certificates.h"
#include "tests/support/test_http_server.h"
#include "yaml-cpp/yaml.h"

namespace meshtel::collector {
namespace {

namespace pb = google::protobuf;
using std::chrono::seconds;

// ---- the official schema, compiled at test time (../shared) --------------------------------

const pb::FieldDescriptor* Field(const pb::Message& message, const char* name) {
  const pb::FieldDescriptor* field = message.GetDescriptor()->FindFieldByName(name);
  EXPECT_NE(field, nullptr) << "official schema: no field " << name;
  return field;
}

// Decodes `serialized` with the official schema and compares it with `own`, field by field.
void ExpectOfficialDecodeEquals(const std::string& serialized,
                                const prometheus::WriteRequest& own) {
  testing::OfficialMessage official = testing::NewOfficialMessage("prometheus.WriteRequest");
  if (!official.unavailable.empty()) {
    std::printf("official schema check skipped: %s\n", official.unavailable.c_str());
    return;
  }
  std::unique_ptr<pb::Message> decoded = std::move(official.message);
  ASSERT_TRUE(decoded->ParseFromString(serialized));
  const pb::Reflection* r = decoded->GetReflection();
  EXPECT_EQ(r->GetUnknownFields(*decoded).field_count(), 0);
  const pb::FieldDescriptor* timeseries = Field(*decoded, "timeseries");
  ASSERT_EQ(r->FieldSize(*decoded, timeseries), own.timeseries_size());
  for (int i = 0; i < own.timeseries_size(); ++i) {
    const prometheus::TimeSeries& mine = own.timeseries(i);
    const pb::Message& series = r->GetRepeatedMessage(*decoded, timeseries, i);
    const pb::Reflection* sr = series.GetReflection();
    EXPECT_EQ(sr->GetUnknownFields(series).field_count(), 0) << "timeseries[" << i << "]";
    const pb::FieldDescriptor* labels = Field(series, "labels");
    ASSERT_EQ(sr->FieldSize(series, labels), mine.labels_size());
    for (int j = 0; j < mine.labels_size(); ++j) {
      const pb::Message& label = sr->GetRepeatedMessage(series, labels, j);
      const pb::Reflection* lr = label.GetReflection();
      EXPECT_EQ(lr->GetString(label, Field(label, "name")), mine.labels(j).name());
      EXPECT_EQ(lr->GetString(label, Field(label, "value")), mine.labels(j).value());
    }
    const pb::FieldDescriptor* samples = Field(series, "samples");
    ASSERT_EQ(sr->FieldSize(series, samples), mine.samples_size());
    for (int j = 0; j < mine.samples_size(); ++j) {
      const pb::Message& sample = sr->GetRepeatedMessage(series, samples, j);
      const pb::Reflection* pr = sample.GetReflection();
      EXPECT_EQ(pr->GetDouble(sample, Field(sample, "value")), mine.samples(j).value());
      EXPECT_EQ(pr->GetInt64(sample, Field(sample, "timestamp")), mine.samples(j).timestamp());
    }
    EXPECT_EQ(sr->FieldSize(series, Field(series, "exemplars")), 0);
    EXPECT_EQ(sr->FieldSize(series, Field(series, "histograms")), 0);
  }
}

// ---- a receiver: a TestHttpServer answering from a script -----------------------------------

struct Received {
  testing::TestHttpRequest request;
  std::string serialized;  // snappy-decoded body ("" when it did not decode)
  prometheus::WriteRequest decoded;
  bool decoded_ok = false;
  int answered = 0;
};

class Receiver {
 public:
  // Answers the n-th request with replies[n], and every later one with the last reply.
  // With `tls` it speaks HTTPS only.
  explicit Receiver(std::vector<testing::TestHttpReply> replies,
                    const std::optional<testing::TestTlsOptions>& tls = std::nullopt)
      : replies_(std::move(replies)),
        tls_(tls.has_value()),
        server_([this](const testing::TestHttpRequest& request) { return Handle(request); }, tls) {}

  std::vector<Received> Requests() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return received_;
  }
  size_t Count() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return received_.size();
  }
  std::string Url() const {
    return fmt::format("{}://127.0.0.1:{}/api/v1/write", tls_ ? "https" : "http", server_.port());
  }
  const testing::TestHttpServer& server() const { return server_; }

 private:
  testing::TestHttpReply Handle(const testing::TestHttpRequest& request) {
    Received received;
    received.request = request;
    if (snappy::Uncompress(request.body.data(), request.body.size(), &received.serialized)) {
      received.decoded_ok = received.decoded.ParseFromString(received.serialized);
    }
    std::lock_guard<std::mutex> lock(mutex_);
    const testing::TestHttpReply reply = replies_[std::min(received_.size(), replies_.size() - 1)];
    received.answered = reply.status;
    received_.push_back(std::move(received));
    return reply;
  }

  const std::vector<testing::TestHttpReply> replies_;
  mutable std::mutex mutex_;
  std::vector<Received> received_;  // guarded by mutex_
  const bool tls_;
  testing::TestHttpServer server_;
};

// ---- the samples: a real RequestMetrics fed with records ------------------------------------

meshtel::v1::RequestRecord Record(meshtel::v1::Reporter reporter, uint32_t code,
                                  uint64_t duration_ns, uint64_t request_bytes,
                                  std::string source) {
  meshtel::v1::RequestRecord record;
  record.set_reporter(reporter);
  record.set_response_code(code);
  record.set_duration_ns(duration_ns);
  record.set_request_bytes(request_bytes);
  record.set_response_bytes(request_bytes * 3);
  record.mutable_source()->set_workload(std::move(source));
  record.mutable_destination()->set_workload("backend");
  return record;
}

void Fill(RequestMetrics& metrics) {
  metrics.Record(Record(meshtel::v1::REPORTER_SOURCE, 200, 3'000'000, 120, "frontend"));
  metrics.Record(Record(meshtel::v1::REPORTER_SOURCE, 200, 70'000'000, 4000, "frontend"));
  metrics.Record(Record(meshtel::v1::REPORTER_DESTINATION, 503, 400'000, 7, "frontend"));
  metrics.Record(Record(meshtel::v1::REPORTER_SOURCE, 404, 12'000'000, 0, "web \"quoted\""));
}

std::string Text(prometheus::Registry& registry) {
  return prometheus::TextSerializer().Serialize(registry.Collect());
}

double Counter(prometheus::Registry& registry, const std::string& name,
               const std::vector<std::string>& fragments = {}) {
  return testing::SumSamples(Text(registry), name, fragments);
}

RemoteWriteConfig Config(const Receiver& receiver) {
  RemoteWriteConfig config;
  config.url = receiver.Url();
  config.interval = absl::Hours(1);  // one snapshot, taken at Start()
  config.timeout = absl::Seconds(10);
  config.min_backoff = absl::Milliseconds(5);
  config.max_backoff = absl::Milliseconds(20);
  return config;
}

// Waits (up to 30 s) until `total` samples count as sent.
::testing::AssertionResult AllSent(prometheus::Registry& registry, uint64_t total) {
  if (testing::WaitFor(
          [&] {
            return Counter(registry, "meshtel_remote_write_samples_total", {"outcome=\"sent\""}) ==
                   total;
          },
          seconds(30))) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure() << "not all " << total << " samples sent:\n"
                                       << Text(registry);
}

uint64_t SampleCount(const RequestMetrics& metrics);

// Runs a writer with `config` over `metrics` until every sample counts as sent, then stops it.
::testing::AssertionResult PushAll(const RemoteWriteConfig& config, RequestMetrics& metrics,
                                   prometheus::Registry& registry) {
  auto writer = RemoteWriter::Create(config, {&metrics}, registry);
  if (!writer.ok()) return ::testing::AssertionFailure() << writer.status();
  (*writer)->Start();
  ::testing::AssertionResult sent = AllSent(registry, SampleCount(metrics));
  (*writer)->Stop();
  return sent;
}

uint64_t SampleCount(const RequestMetrics& metrics) {
  uint64_t count = 0;
  metrics.VisitSamples([&](const MetricSample&) { ++count; });
  return count;
}

// ---- tests ---------------------------------------------------------------------------------

TEST(RemoteWriterTest, RequestsCarryTheRemoteWriteHeadersAndEverySampleTheScrapeShows) {
  RequestMetrics metrics;
  Fill(metrics);
  std::string scrape;
  metrics.RenderText(scrape);
  Receiver receiver({testing::TestHttpReply{.status = 204}});
  prometheus::Registry registry;
  RemoteWriteConfig config = Config(receiver);
  config.max_samples_per_send = 50;
  config.bearer_token = "s3cret";
  config.headers = {{"X-Scope-OrgID", "tenant-1"}};
  const uint64_t total = SampleCount(metrics);
  ASSERT_GT(total, 100u);
  absl::StatusOr<std::unique_ptr<RemoteWriter>> writer =
      RemoteWriter::Create(config, {&metrics}, registry);
  ASSERT_TRUE(writer.ok()) << writer.status();
  (*writer)->Start();
  ASSERT_TRUE(AllSent(registry, total));
  (*writer)->Stop();

  const std::vector<Received> requests = receiver.Requests();
  ASSERT_EQ(requests.size(), (total + 49) / 50);
  std::set<std::string> seen_series;
  for (const Received& received : requests) {
    const testing::TestHttpRequest& request = received.request;
    EXPECT_EQ(request.method, "POST");
    EXPECT_EQ(request.target, "/api/v1/write");
    const std::map<std::string, std::string> expected_headers = {
        {"content-encoding", "snappy"},
        {"content-type", "application/x-protobuf"},
        {"x-prometheus-remote-write-version", "0.1.0"},
        {"user-agent", "meshtel-collector/" MESHTEL_VERSION},
        {"authorization", "Bearer s3cret"},
        {"x-scope-orgid", "tenant-1"}};
    for (const auto& [name, value] : expected_headers) {
      ASSERT_TRUE(request.headers.contains(name)) << name;
      EXPECT_EQ(request.headers.at(name), value) << name;
    }
    ASSERT_TRUE(received.decoded_ok) << "not snappy block format or not a WriteRequest";
    EXPECT_LE(received.decoded.timeseries_size(), 50);
    ExpectOfficialDecodeEquals(received.serialized, received.decoded);
    for (const prometheus::TimeSeries& series : received.decoded.timeseries()) {
      // Labels sorted by name, no name twice, __name__ among them.
      std::string name;
      std::vector<std::string> fragments;
      std::string key;
      for (int i = 0; i < series.labels_size(); ++i) {
        if (i > 0) {
          EXPECT_LT(series.labels(i - 1).name(), series.labels(i).name());
        }
        key += series.labels(i).name() + "=" + series.labels(i).value() + ",";
        if (series.labels(i).name() == "__name__") {
          name = series.labels(i).value();
        } else {
          std::string escaped;
          for (char c : series.labels(i).value()) {
            if (c == '"' || c == '\\') escaped += '\\';
            escaped += c;
          }
          fragments.push_back(series.labels(i).name() + "=\"" + escaped + "\"");
        }
      }
      ASSERT_FALSE(name.empty());
      EXPECT_TRUE(seen_series.insert(key).second) << "sent twice: " << key;
      ASSERT_EQ(series.samples_size(), 1);
      EXPECT_EQ(series.samples(0).timestamp(),
                requests.front().decoded.timeseries(0).samples(0).timestamp());
      // The scrape shows exactly this series (all its labels) with this value.
      const std::vector<std::string> lines = testing::SampleLines(scrape, name, fragments);
      ASSERT_EQ(lines.size(), 1u) << key;
      EXPECT_EQ(testing::SampleValue(lines.front()), series.samples(0).value()) << key;
    }
  }
  // Every sample line of the scrape was sent, histograms as _bucket/_sum/_count.
  size_t scrape_samples = 0;
  std::stringstream lines(scrape);
  for (std::string line; std::getline(lines, line);) {
    if (!line.empty() && line[0] != '#') ++scrape_samples;
  }
  EXPECT_EQ(seen_series.size(), scrape_samples);
  EXPECT_EQ(testing::SampleLines(scrape, "istio_request_bytes_bucket", {"le=\"+Inf\""}).size(), 3u);
  const int64_t now_ms = absl::ToUnixMillis(absl::Now());
  const int64_t stamp = requests.front().decoded.timeseries(0).samples(0).timestamp();
  EXPECT_LE(stamp, now_ms);
  EXPECT_GT(stamp, now_ms - 3'600'000);
  EXPECT_EQ(Counter(registry, "meshtel_remote_write_requests_total", {"code=\"204\""}),
            requests.size());
  EXPECT_EQ(Counter(registry, "meshtel_remote_write_retries_total"), 0);
}

TEST(RemoteWriterTest, BatchesHoldAtMostMaxSamplesPerSend) {
  RequestMetrics metrics;
  Fill(metrics);
  const uint64_t total = SampleCount(metrics);
  for (uint64_t max : {uint64_t{1}, uint64_t{7}, total - 1, total, total + 1}) {
    const std::vector<RemoteWriteBatch> batches = BuildRemoteWriteBatches({&metrics}, 1000, max);
    ASSERT_EQ(batches.size(), (total + max - 1) / max) << max;
    uint64_t sum = 0;
    for (size_t i = 0; i < batches.size(); ++i) {
      std::string serialized;
      ASSERT_TRUE(snappy::Uncompress(batches[i].body.data(), batches[i].body.size(), &serialized));
      prometheus::WriteRequest request;
      ASSERT_TRUE(request.ParseFromString(serialized));
      EXPECT_EQ(static_cast<uint64_t>(request.timeseries_size()), batches[i].samples);
      if (i + 1 < batches.size()) {
        EXPECT_EQ(batches[i].samples, max);
      }
      EXPECT_LE(batches[i].samples, max);
      sum += batches[i].samples;
    }
    EXPECT_EQ(sum, total);
  }
  RequestMetrics empty({.build_tag = ""});
  EXPECT_TRUE(BuildRemoteWriteBatches({&empty}, 1000, 10).empty());
}

TEST(RemoteWriterTest, ServerErrorsAreRetriedUntilTheRequestIsTaken) {
  RequestMetrics metrics;
  Fill(metrics);
  Receiver receiver({{.status = 500, .body = "storage busy"}, {.status = 503}, {.status = 204}});
  prometheus::Registry registry;
  RemoteWriteConfig config = Config(receiver);
  config.basic_auth_username = "meshtel";
  config.basic_auth_password = "pw";
  ASSERT_TRUE(PushAll(config, metrics, registry));
  const std::vector<Received> requests = receiver.Requests();
  ASSERT_EQ(requests.size(), 3u);
  // The same request three times.
  EXPECT_EQ(requests[1].request.body, requests[0].request.body);
  EXPECT_EQ(requests[2].request.body, requests[0].request.body);
  EXPECT_EQ(requests[0].request.headers.at("authorization"), "Basic bWVzaHRlbDpwdw==");
  EXPECT_EQ(Counter(registry, "meshtel_remote_write_retries_total"), 2);
  EXPECT_EQ(Counter(registry, "meshtel_remote_write_requests_total", {"code=\"500\""}), 1);
  EXPECT_EQ(Counter(registry, "meshtel_remote_write_requests_total", {"code=\"503\""}), 1);
  EXPECT_EQ(Counter(registry, "meshtel_remote_write_requests_total", {"code=\"204\""}), 1);
  EXPECT_EQ(Counter(registry, "meshtel_remote_write_samples_total", {"outcome=\"failed\""}), 0);
  EXPECT_EQ(Counter(registry, "meshtel_remote_write_samples_total", {"outcome=\"dropped\""}), 0);
}

TEST(RemoteWriterTest, TooManyRequestsWaitsForRetryAfterInsteadOfTheBackoff) {
  RequestMetrics metrics;
  Fill(metrics);
  Receiver receiver({{.status = 429, .headers = {{"Retry-After", "1"}}}, {.status = 204}});
  prometheus::Registry registry;
  RemoteWriteConfig config = Config(receiver);
  // Without Retry-After the retry would come an hour later: the test would time out.
  config.min_backoff = absl::Hours(1);
  config.max_backoff = absl::Hours(1);
  ASSERT_TRUE(PushAll(config, metrics, registry));
  const std::vector<Received> requests = receiver.Requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].answered, 429);
  EXPECT_EQ(requests[1].answered, 204);
  EXPECT_EQ(requests[1].request.body, requests[0].request.body);
  EXPECT_EQ(Counter(registry, "meshtel_remote_write_retries_total"), 1);
  EXPECT_EQ(Counter(registry, "meshtel_remote_write_requests_total", {"code=\"429\""}), 1);
}

TEST(RemoteWriterTest, BadRequestIsNotRetriedAndItsSamplesAreDropped) {
  RequestMetrics metrics;
  Fill(metrics);
  Receiver receiver({{.status = 400, .body = "out of order sample"}, {.status = 204}});
  prometheus::Registry registry;
  RemoteWriteConfig config = Config(receiver);
  config.max_samples_per_send = 10;
  auto writer = RemoteWriter::Create(config, {&metrics}, registry);
  ASSERT_TRUE(writer.ok()) << writer.status();
  (*writer)->Start();
  const uint64_t total = SampleCount(metrics);
  const auto done = [&] {
    return Counter(registry, "meshtel_remote_write_samples_total", {"outcome=\"sent\""}) +
               Counter(registry, "meshtel_remote_write_samples_total", {"outcome=\"dropped\""}) ==
           total;
  };
  ASSERT_TRUE(testing::WaitFor(done, seconds(30))) << Text(registry);
  (*writer)->Stop();
  const std::vector<Received> requests = receiver.Requests();
  // One request per batch: the refused one was not sent again, the others went on.
  ASSERT_EQ(requests.size(), (total + 9) / 10);
  for (size_t i = 1; i < requests.size(); ++i) {
    EXPECT_NE(requests[i].request.body, requests[0].request.body);
  }
  EXPECT_EQ(Counter(registry, "meshtel_remote_write_samples_total", {"outcome=\"dropped\""}), 10);
  EXPECT_EQ(Counter(registry, "meshtel_remote_write_samples_total", {"outcome=\"sent\""}),
            total - 10);
  EXPECT_EQ(Counter(registry, "meshtel_remote_write_retries_total"), 0);
  EXPECT_EQ(Counter(registry, "meshtel_remote_write_requests_total", {"code=\"400\""}), 1);
}

TEST(RemoteWriterTest, ANewerSnapshotReplacesOneStillFailing) {
  RequestMetrics metrics;
  Fill(metrics);
  Receiver receiver({testing::TestHttpReply{.status = 500}});
  prometheus::Registry registry;
  RemoteWriteConfig config = Config(receiver);
  config.interval = absl::Milliseconds(200);
  config.min_backoff = absl::Hours(1);  // only the next snapshot sends again
  config.max_backoff = absl::Hours(1);
  auto writer = RemoteWriter::Create(config, {&metrics}, registry);
  ASSERT_TRUE(writer.ok()) << writer.status();
  (*writer)->Start();
  const uint64_t total = SampleCount(metrics);
  ASSERT_TRUE(testing::WaitFor([&] { return receiver.Count() >= 2; }, seconds(30)));
  (*writer)->Stop();
  const std::vector<Received> requests = receiver.Requests();
  // Each request is a newer snapshot, never an old one sent again.
  for (size_t i = 1; i < requests.size(); ++i) {
    ASSERT_TRUE(requests[i].decoded_ok);
    EXPECT_GT(requests[i].decoded.timeseries(0).samples(0).timestamp(),
              requests[i - 1].decoded.timeseries(0).samples(0).timestamp());
  }
  // Every snapshot's samples count as failed: replaced, or unsent at Stop().
  // (a snapshot replaced before its first try counts too, so at least one per request).
  const double failed =
      Counter(registry, "meshtel_remote_write_samples_total", {"outcome=\"failed\""});
  EXPECT_GE(failed, static_cast<double>(total * requests.size()));
  EXPECT_EQ(static_cast<uint64_t>(failed) % total, 0u);
  EXPECT_EQ(Counter(registry, "meshtel_remote_write_samples_total", {"outcome=\"sent\""}), 0);
}

TEST(RemoteWriterTest, TransportFailuresAreRetried) {
  RequestMetrics metrics;
  Fill(metrics);
  prometheus::Registry registry;
  RemoteWriteConfig config;
  config.url = fmt::format("http://127.0.0.1:{}/api/v1/write", testing::FreePort());
  config.interval = absl::Hours(1);
  config.min_backoff = absl::Milliseconds(1);
  config.max_backoff = absl::Milliseconds(2);
  auto writer = RemoteWriter::Create(config, {&metrics}, registry);
  ASSERT_TRUE(writer.ok()) << writer.status();
  (*writer)->Start();
  ASSERT_TRUE(testing::WaitFor(
      [&] { return Counter(registry, "meshtel_remote_write_retries_total") >= 3; }, seconds(30)));
  (*writer)->Stop();
  EXPECT_GE(Counter(registry, "meshtel_remote_write_requests_total", {"code=\"error\""}), 3);
  EXPECT_EQ(Counter(registry, "meshtel_remote_write_samples_total", {"outcome=\"failed\""}),
            SampleCount(metrics));
}

// Remote write to receivers that speak HTTPS only, with the test CA's certificates.
class RemoteWriterTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    certificates_ = testing::MakeTestCertificates(testing::MakeTempDir("meshtel-remote-write-tls"));
    if (!certificates_.unavailable.empty()) GTEST_SKIP() << certificates_.unavailable;
    Fill(metrics_);
  }
  // The receiver's TLS, requiring a client certificate signed by the test CA when asked to.
  testing::TestTlsOptions ServerTls(bool require_client_certificate) const {
    return testing::TestTlsOptions{
        .cert_pem = certificates_.server_cert_pem,
        .key_pem = certificates_.server_key_pem,
        .client_ca_pem = require_client_certificate ? certificates_.ca_pem : std::string()};
  }

  testing::TestCertificates certificates_;
  RequestMetrics metrics_;
};

// An https:// url with the entry's `tls:` block (read from YAML, files and all): the requests
// arrive over TLS, with mutual TLS, at a receiver that speaks nothing else.
TEST_F(RemoteWriterTlsTest, PushesOverHttpsWithTheTlsBlock) {
  const testing::TestCertificates& certificates = certificates_;
  RequestMetrics& metrics = metrics_;
  Receiver receiver({testing::TestHttpReply{.status = 204}},
                    ServerTls(/*require_client_certificate=*/true));
  ASSERT_TRUE(receiver.Url().starts_with("https://")) << receiver.Url();
  absl::StatusOr<CollectorConfig> parsed = ParseCollectorConfig(YAML::Load(
      fmt::format("metrics:\n  remote_write:\n    - url: {}\n      interval: 1h\n      tls:\n"
                  "        ca_file: {}\n        cert_file: {}\n        key_file: {}\n"
                  "        server_name: {}\n",
                  receiver.Url(), certificates.ca_file, certificates.client_cert_file,
                  certificates.client_key_file, testing::kTestServerName)));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  ASSERT_EQ(parsed->metrics.remote_write.size(), 1u);
  const RemoteWriteConfig& config = parsed->metrics.remote_write[0];
  EXPECT_TRUE(config.tls.enabled);
  EXPECT_EQ(config.tls.ca_pem, certificates.ca_pem);
  prometheus::Registry registry;
  ASSERT_TRUE(PushAll(config, metrics, registry));
  const std::vector<Received> requests = receiver.Requests();
  ASSERT_FALSE(requests.empty());
  for (const Received& received : requests) EXPECT_TRUE(received.decoded_ok);
  EXPECT_EQ(receiver.server().tls_handshakes(), 1u);
}

// Without the CA the receiver is not trusted: nothing arrives, the failure is retried.
TEST_F(RemoteWriterTlsTest, AnUntrustedHttpsReceiverIsATransportFailure) {
  RequestMetrics& metrics = metrics_;
  Receiver receiver({testing::TestHttpReply{.status = 204}},
                    ServerTls(/*require_client_certificate=*/false));
  prometheus::Registry registry;
  RemoteWriteConfig config = Config(receiver);
  config.min_backoff = absl::Milliseconds(1);
  config.max_backoff = absl::Milliseconds(2);
  config.tls.enabled = true;
  config.tls.server_name = testing::kTestServerName;
  auto writer = RemoteWriter::Create(config, {&metrics}, registry);
  ASSERT_TRUE(writer.ok()) << writer.status();
  (*writer)->Start();
  ASSERT_TRUE(testing::WaitFor(
      [&] { return Counter(registry, "meshtel_remote_write_retries_total") >= 2; }, seconds(30)));
  (*writer)->Stop();
  EXPECT_EQ(receiver.Count(), 0u);
  EXPECT_GE(Counter(registry, "meshtel_remote_write_requests_total", {"code=\"error\""}), 2);
}

TEST(RegistrySampleSourceTest, SamplesAreTheLinesTheScrapePrintsOfTheRegistry) {
  prometheus::Registry registry;
  auto& counters =
      prometheus::BuildCounter().Name("meshtel_things_total").Help("h").Register(registry);
  counters.Add({{"kind", "a"}}).Increment(3);
  counters.Add({{"kind", "b \"q\""}, {"zone", "x"}}).Increment(0.5);
  prometheus::BuildGauge().Name("meshtel_level").Help("h").Register(registry).Add({}).Set(-2.25);
  auto& histogram = prometheus::BuildHistogram()
                        .Name("meshtel_wait_seconds")
                        .Help("h")
                        .Register(registry)
                        .Add({{"op", "x"}}, prometheus::Histogram::BucketBoundaries{0.5, 1, 2.5});
  histogram.Observe(0.2);
  histogram.Observe(2);
  histogram.Observe(7);
  prometheus::BuildSummary()
      .Name("meshtel_size")
      .Help("h")
      .Register(registry)
      .Add({}, prometheus::Summary::Quantiles{{0.5, 0.05}})
      .Observe(4);
  std::string scrape;
  AppendPrometheusCppFamilies(ExpositionFormat::kPrometheusText, registry.Collect(), scrape);

  const RegistrySampleSource source(registry);
  size_t visited = 0;
  source.VisitSamples([&](const MetricSample& sample) {
    ++visited;
    std::vector<std::string> fragments;
    for (const SampleLabel& label : sample.labels) {
      std::string escaped;
      for (char c : label.value) {
        if (c == '"' || c == '\\') escaped += '\\';
        escaped += c;
      }
      fragments.push_back(fmt::format("{}=\"{}\"", label.name, escaped));
    }
    const std::vector<std::string> lines =
        testing::SampleLines(scrape, std::string(sample.metric), fragments);
    ASSERT_EQ(lines.size(), 1u) << sample.metric << " "
                                << fmt::format("{}", fmt::join(fragments, ","));
    EXPECT_EQ(testing::SampleValue(lines.front()), sample.value) << lines.front();
  });
  size_t scrape_samples = 0;
  std::stringstream lines(scrape);
  for (std::string line; std::getline(lines, line);) {
    if (!line.empty() && line[0] != '#') ++scrape_samples;
  }
  EXPECT_EQ(visited, scrape_samples);
  EXPECT_EQ(scrape_samples, 2u + 1u + 6u + 3u);
  EXPECT_EQ(testing::SampleLines(scrape, "meshtel_wait_seconds_bucket", {"le=\"1\""}).size(), 1u);
}

// ---- config ---------------------------------------------------------------------------------

absl::StatusOr<CollectorConfig> Parse(const std::string& yaml) {
  return ParseCollectorConfig(YAML::Load(yaml));
}

TEST(RemoteWriteConfigTest, DefaultsAndEveryKey) {
  absl::StatusOr<CollectorConfig> config = Parse(
      "metrics:\n"
      "  remote_write:\n"
      "    - url: http://mimir:9009/api/v1/push\n"
      "    - url: http://127.0.0.1:9090/api/v1/write\n"
      "      interval: 30s\n"
      "      timeout: 5s\n"
      "      max_samples_per_send: 500\n"
      "      min_backoff: 50ms\n"
      "      max_backoff: 2s\n"
      "      basic_auth: {username: u, password: p}\n"
      "      headers: {X-Scope-OrgID: team-a}\n");
  ASSERT_TRUE(config.ok()) << config.status();
  ASSERT_EQ(config->metrics.remote_write.size(), 2u);
  const RemoteWriteConfig& first = config->metrics.remote_write[0];
  EXPECT_EQ(first.url, "http://mimir:9009/api/v1/push");
  EXPECT_EQ(first.interval, absl::Seconds(15));
  EXPECT_EQ(first.timeout, absl::Seconds(10));
  EXPECT_EQ(first.max_samples_per_send, 2000u);
  EXPECT_TRUE(first.headers.empty());
  const RemoteWriteConfig& second = config->metrics.remote_write[1];
  EXPECT_EQ(second.interval, absl::Seconds(30));
  EXPECT_EQ(second.timeout, absl::Seconds(5));
  EXPECT_EQ(second.max_samples_per_send, 500u);
  EXPECT_EQ(second.min_backoff, absl::Milliseconds(50));
  EXPECT_EQ(second.max_backoff, absl::Seconds(2));
  EXPECT_EQ(second.basic_auth_username, "u");
  EXPECT_EQ(second.basic_auth_password, "p");
  ASSERT_EQ(second.headers.size(), 1u);
  EXPECT_EQ(second.headers[0].first, "X-Scope-OrgID");
  EXPECT_EQ(second.headers[0].second, "team-a");
  EXPECT_TRUE(Parse("metrics: {}\n")->metrics.remote_write.empty());
}

TEST(RemoteWriteConfigTest, ErrorsNameThePath) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"metrics: {remote_write: [{interval: 1s}]}", "metrics.remote_write[0].url: is required"},
      {"metrics: {remote_write: [{url: \"ftp://x/api/v1/write\"}]}",
       "metrics.remote_write[0].url: 'ftp://x/api/v1/write'"},
      {"metrics: {remote_write: [{url: \"http://a/w\", tls: {enabled: true}}]}",
       "metrics.remote_write[0].tls.enabled: is true, but metrics.remote_write[0].url is an "
       "http:// URL: use https:// for TLS"},
      {"metrics: {remote_write: [{url: \"https://a/w\", tls: {enabled: false}}]}",
       "metrics.remote_write[0].tls.enabled: is false, but metrics.remote_write[0].url is an "
       "https:// URL"},
      {"metrics: {remote_write: [{url: \"http://a/w\", tls: {server_name: a}}]}",
       "metrics.remote_write[0].tls: sets files or a server name, but "
       "metrics.remote_write[0].url is an http:// URL"},
      {"metrics: {remote_write: [{url: \"https://a/w\", tls: {ca_file: /nonexistent/ca.pem}}]}",
       "metrics.remote_write[0].tls.ca_file: cannot read '/nonexistent/ca.pem': No such file "
       "or directory"},
      {"metrics: {remote_write: [{url: \"https://a/w\", tls: {cert_file: /c.pem}}]}",
       "metrics.remote_write[0].tls.key_file: is required with cert_file"},
      {"metrics: {remote_write: [{url: \"https://a/w\", tls: {skip_verify: true}}]}",
       "metrics.remote_write[0].tls.skip_verify: unknown key"},
      {"metrics: {remote_write: [{url: \"http://a/w\"}, {url: \"http://b/w\", urls: x}]}",
       "metrics.remote_write[1].urls: unknown key"},
      {"metrics: {remote_write: [{url: \"http://a/w\", interval: soon}]}",
       "metrics.remote_write[0].interval"},
      {"metrics: {remote_write: [{url: \"http://a/w\", interval: 10ms}]}",
       "metrics.remote_write[0].interval: 10ms is below 100ms"},
      {"metrics: {remote_write: [{url: \"http://a/w\", timeout: 0s}]}",
       "metrics.remote_write[0].timeout: 0 is not positive"},
      {"metrics: {remote_write: [{url: \"http://a/w\", max_samples_per_send: 0}]}",
       "metrics.remote_write[0].max_samples_per_send: 0 is not in [1, 1000000]"},
      {"metrics: {remote_write: [{url: \"http://a/w\", min_backoff: 10s, max_backoff: 1s}]}",
       "metrics.remote_write[0].min_backoff: 10s must be positive and not above max_backoff"},
      {"metrics: {remote_write: [{url: \"http://a/w\", basic_auth: {password: p}}]}",
       "metrics.remote_write[0].basic_auth.username: is required"},
      {"metrics: {remote_write: [{url: \"http://a/w\", basic_auth: {username: u, pw: p}}]}",
       "metrics.remote_write[0].basic_auth.pw: unknown key"},
      {"metrics: {remote_write: [{url: \"http://a/w\", basic_auth: {username: u}, "
       "bearer_token: t}]}",
       "metrics.remote_write[0].bearer_token: cannot be set together with basic_auth"},
      {"metrics: {remote_write: [{url: \"http://a/w\", headers: {Content-Type: text/plain}}]}",
       "metrics.remote_write[0].headers.Content-Type: is set by the remote writer"},
      {"metrics: {remote_write: [{url: \"http://a/w\", bearer_token: t, "
       "headers: {authorization: x}}]}",
       "metrics.remote_write[0].headers.authorization: is set by the remote writer"},
      {"metrics: {remote_write: [{url: \"http://a/w\", headers: {\"a b\": x}}]}",
       "metrics.remote_write[0].headers.a b: is not a valid header name"},
      {"metrics: {remote_write: {url: \"http://a/w\"}}", "metrics.remote_write: must be a list"},
  };
  for (const auto& [yaml, expected] : cases) {
    absl::StatusOr<CollectorConfig> config = Parse(yaml);
    ASSERT_FALSE(config.ok()) << yaml;
    EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument) << yaml;
    EXPECT_NE(config.status().message().find(expected), std::string::npos)
        << yaml << "\n  got: " << config.status().message();
  }
  // Without basic_auth or bearer_token, Authorization may be set as a header.
  EXPECT_TRUE(
      Parse("metrics: {remote_write: [{url: \"http://a/w\", headers: {Authorization: x}}]}").ok());
}

}  // namespace
}  // namespace meshtel::collector
