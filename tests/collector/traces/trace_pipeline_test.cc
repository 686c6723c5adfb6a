#include "collector/traces/trace_pipeline.h"

#include <chrono>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "tests/support/process.h"

namespace meshtel::collector {
namespace {

constexpr StoreKey kEnd{~uint64_t{0}, ~uint64_t{0}};

// One hop of trace `trace`: span `span` whose parent is `parent` (0 = a root).
meshtel::v1::RequestRecord Hop(char trace, char span, char parent, uint32_t code = 200,
                               bool sampled = true) {
  meshtel::v1::RequestRecord record;
  record.set_reporter(meshtel::v1::REPORTER_DESTINATION);
  record.set_start_time_unix_nano(1'700'000'000'000'000'000ull);
  record.set_duration_ns(1'000'000);
  record.set_method("GET");
  record.set_authority("backend:8080");
  record.set_path("/");
  record.set_response_code(code);
  record.set_trace_id(std::string(16, trace));
  record.set_span_id(std::string(8, span));
  if (parent != 0) record.set_parent_span_id(std::string(8, parent));
  record.set_sampled(sampled);
  return record;
}

// An SDK's span as an OTLP receiver stores it: only received_span set.
meshtel::v1::RequestRecord Received(char trace, char span, char parent, bool sampled = true,
                                    int64_t http_status = 200) {
  meshtel::v1::RequestRecord record;
  meshtel::v1::Span& received = *record.mutable_received_span();
  received.set_trace_id(std::string(16, trace));
  received.set_span_id(std::string(8, span));
  if (parent != 0) received.set_parent_span_id(std::string(8, parent));
  received.set_name("GET /cart");
  received.set_kind(meshtel::v1::SPAN_KIND_INTERNAL);
  received.set_start_time_unix_nano(1'700'000'000'000'100'000ull);
  received.set_end_time_unix_nano(1'700'000'000'000'900'000ull);
  received.set_flags(sampled ? 1 : 0);
  meshtel::v1::SpanAttribute* status = received.add_attributes();
  status->set_key("http.response.status_code");
  status->set_int_value(http_status);
  received.set_service_name("cart-sdk");
  meshtel::v1::SpanAttribute* version = received.add_resource_attributes();
  version->set_key("service.version");
  version->set_string_value("1.4.2");
  received.set_scope_name("io.opentelemetry.spring-webmvc-6.0");
  received.set_scope_version("2.1.0");
  return record;
}

meshtel::v1::RequestRecord ReceivedLog(char trace) {
  meshtel::v1::RequestRecord record;
  meshtel::v1::LogEntry& log = *record.mutable_received_log();
  log.set_time_unix_nano(1'700'000'000'000'500'000ull);
  log.set_body("cart loaded");
  log.set_trace_id(std::string(16, trace));
  log.set_span_id(std::string(8, '2'));
  log.set_service_name("cart-sdk");
  return record;
}

class TracePipelineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir("traces");
    config_.assembly.idle_timeout = absl::Milliseconds(200);
    config_.assembly.max_wait = absl::Seconds(60);
    config_.sampling.keep_head_sampled = true;
    OpenStore();
  }
  void OpenStore() {
    StoreConfig store_config;
    store_config.data_dir = dir_;
    store_config.durability = "process";
    registries_.push_back(std::make_unique<prometheus::Registry>());
    absl::StatusOr<std::unique_ptr<RecordStore>> store =
        RecordStore::Open(store_config, *registries_.back());
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
  }
  void Append(std::vector<meshtel::v1::RequestRecord> records) {
    meshtel::v1::RecordBatch batch;
    batch.set_proxy_instance_id("proxy-1");
    batch.set_sequence(++sequence_);
    for (auto& record : records) *batch.add_records() = std::move(record);
    ASSERT_TRUE(store_->AppendBatch(batch, InstanceProgress{sequence_, 0}).ok());
  }
  // Stores entries as a receiver does (no instance progress).
  void AppendReceived(std::vector<meshtel::v1::RequestRecord> records) {
    google::protobuf::RepeatedPtrField<meshtel::v1::RequestRecord> field;
    for (auto& record : records) *field.Add() = std::move(record);
    ASSERT_TRUE(store_->AppendRecords(field).ok());
  }
  std::unique_ptr<TracePipeline> StartPipeline(const PolicyEnforcer* policy = nullptr) {
    registries_.push_back(std::make_unique<prometheus::Registry>());
    auto pipeline = std::make_unique<TracePipeline>(config_, *store_, *registries_.back(), policy);
    EXPECT_TRUE(pipeline->Start().ok());
    return pipeline;
  }
  std::vector<StoredRecord> StoredSpans() {
    absl::StatusOr<std::vector<StoredRecord>> spans =
        store_->Read(RecordFamily::kSpans, StoreKey{}, kEnd, 100000);
    EXPECT_TRUE(spans.ok());
    return spans.ok() ? *std::move(spans) : std::vector<StoredRecord>{};
  }
  // Waits until `count` spans are stored (the test fails after 30 s).
  std::vector<StoredRecord> WaitForSpans(size_t count) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    std::vector<StoredRecord> spans = StoredSpans();
    while (spans.size() < count && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      spans = StoredSpans();
    }
    EXPECT_EQ(spans.size(), count);
    return spans;
  }

  std::string dir_;
  TracesConfig config_;
  std::vector<std::unique_ptr<prometheus::Registry>> registries_;
  std::unique_ptr<RecordStore> store_;
  uint64_t sequence_ = 0;
};

TEST_F(TracePipelineTest, StoredRecordsBecomeStoredTracesThatCanBeLookedUp) {
  std::unique_ptr<TracePipeline> pipeline = StartPipeline();
  Append({Hop('a', '2', '1'), Hop('b', '1', 0, 200, /*sampled=*/false)});
  Append({Hop('a', '1', 0)});
  // 'b' is neither sampled nor an error: dropped. 'a' is kept whole.
  std::vector<StoredRecord> spans = WaitForSpans(2);
  for (const StoredRecord& stored : spans) EXPECT_EQ(stored.span.trace_id(), std::string(16, 'a'));
  absl::StatusOr<std::vector<StoredRecord>> trace = store_->ReadTrace(std::string(16, 'a'));
  ASSERT_TRUE(trace.ok());
  EXPECT_EQ(trace->size(), 2u);
  EXPECT_TRUE(store_->ReadTrace(std::string(16, 'b'))->empty());
  pipeline->Stop();
  // Everything is decided: the cursor is past every record.
  absl::StatusOr<std::vector<StoredRecord>> after =
      store_->Read(RecordFamily::kLogs, *store_->LoadCursor(TracePipeline::kReaderName), kEnd, 10);
  ASSERT_TRUE(after.ok());
  EXPECT_TRUE(after->empty());
}

std::string Tag(const meshtel::v1::Span& span, const std::string& key) {
  for (const auto& attribute : span.attributes()) {
    if (attribute.key() == key) return attribute.string_value();
  }
  return "<absent>";
}

// The workload's tracing policy: span reporting off for one side, formatter tags, providers.
TEST_F(TracePipelineTest, TheWorkloadsTracingPolicyShapesItsSpans) {
  WorkloadPolicy cart;
  TracingPolicy& server = cart.tracing[static_cast<size_t>(PolicySide::kServer)];
  server.custom_tags = {
      {.name = "route", .kind = CustomTag::Kind::kFormatter, .value = "%ROUTE_NAME%"}};
  server.providers = {"tempo"};
  WorkloadPolicy frontend;
  frontend.tracing[static_cast<size_t>(PolicySide::kClient)].disable_span_reporting = true;
  PolicyDefaults defaults;
  defaults.exporters = {{"jaeger", true}, {"tempo", true}};
  auto enforcer = PolicyEnforcer::Create(defaults, [&](const PolicyWorkload& workload) {
    if (workload.name == "cart") return cart;
    if (workload.name == "frontend") return frontend;
    return WorkloadPolicy{};
  });
  ASSERT_TRUE(enforcer.ok()) << enforcer.status();
  std::unique_ptr<TracePipeline> pipeline = StartPipeline(enforcer->get());

  // frontend's outbound hop (a trace of its own): not reported, so trace 'r' has no span.
  meshtel::v1::RequestRecord client = Hop('r', '1', 0);
  client.set_reporter(meshtel::v1::REPORTER_SOURCE);
  client.mutable_source()->set_workload("frontend");
  client.mutable_destination()->set_workload("cart");
  meshtel::v1::RequestRecord inbound = Hop('p', '2', 0);  // cart's inbound hop
  inbound.mutable_source()->set_workload("frontend");
  inbound.mutable_destination()->set_workload("cart");
  inbound.set_route_name("cart-route");
  meshtel::v1::SpanTag* tag = inbound.add_custom_tags();
  tag->set_name("tier");
  tag->set_value("gold");
  meshtel::v1::RequestRecord other = Hop('q', '1', 0);  // no policy: every exporter
  other.mutable_destination()->set_workload("orders");
  Append({client, inbound, other});

  std::vector<StoredRecord> spans = WaitForSpans(2);
  EXPECT_TRUE(store_->ReadTrace(std::string(16, 'r'))->empty());
  std::map<std::string, meshtel::v1::Span> by_trace;
  for (const StoredRecord& stored : spans) by_trace[stored.span.trace_id()] = stored.span;
  const meshtel::v1::Span& cart_span = by_trace[std::string(16, 'p')];
  EXPECT_EQ(cart_span.span_id(), std::string(8, '2'));
  EXPECT_EQ(Tag(cart_span, "route"), "cart-route");
  EXPECT_EQ(Tag(cart_span, "tier"), "gold");
  EXPECT_EQ(std::vector<std::string>(cart_span.exporters().begin(), cart_span.exporters().end()),
            std::vector<std::string>{"tempo"});
  const meshtel::v1::Span& orders_span = by_trace[std::string(16, 'q')];
  EXPECT_EQ(orders_span.exporters_size(), 0);
  EXPECT_EQ(Tag(orders_span, "route"), "<absent>");
}

TEST_F(TracePipelineTest, AnErrorTraceIsKeptEvenWhenNotSampled) {
  std::unique_ptr<TracePipeline> pipeline = StartPipeline();
  Append({Hop('e', '2', '1', 503, false), Hop('e', '1', 0, 503, false)});
  std::vector<StoredRecord> spans = WaitForSpans(2);
  EXPECT_EQ(spans[0].span.status_code(), meshtel::v1::SPAN_STATUS_CODE_ERROR);
}

TEST_F(TracePipelineTest, ARestartLosesNoPendingTraceAndWritesNoKeptSpanTwice) {
  {
    std::unique_ptr<TracePipeline> pipeline = StartPipeline();
    Append({Hop('p', '2', '1')});  // pending: its root comes after the restart
    Append({Hop('a', '2', '1'), Hop('a', '1', 0)});
    WaitForSpans(2);  // 'a' decided and written while 'p' waits
    pipeline->Stop();
  }
  ASSERT_TRUE(store_->Close().ok());
  store_.reset();
  OpenStore();
  Append({Hop('p', '1', 0)});
  std::unique_ptr<TracePipeline> pipeline = StartPipeline();
  std::vector<StoredRecord> spans = WaitForSpans(4);
  std::map<std::string, int> per_trace;
  for (const StoredRecord& stored : spans) ++per_trace[stored.span.trace_id()];
  EXPECT_EQ(per_trace[std::string(16, 'a')], 2);
  EXPECT_EQ(per_trace[std::string(16, 'p')], 2);
  // Give a duplicate the time to appear if the pipeline were to write one.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_EQ(StoredSpans().size(), 4u);
}

TEST_F(TracePipelineTest, AReceivedSpanJoinsTheProxySpansOfItsTraceAsItIs) {
  std::unique_ptr<TracePipeline> pipeline = StartPipeline();
  // The proxy's SERVER span '1' (root) and the app's SDK span '2' under it, then the SDK's own
  // log record, which the pipeline passes over.
  Append({Hop('m', '1', 0)});
  AppendReceived({Received('m', '2', '1'), ReceivedLog('m')});
  std::vector<StoredRecord> spans = WaitForSpans(2);
  ASSERT_EQ(spans.size(), 2u);
  const meshtel::v1::Span* sdk = nullptr;
  const meshtel::v1::Span* proxy = nullptr;
  for (const StoredRecord& stored : spans) {
    (stored.span.span_id() == std::string(8, '2') ? sdk : proxy) = &stored.span;
  }
  ASSERT_NE(sdk, nullptr);
  ASSERT_NE(proxy, nullptr);
  // The received span is stored as it came: no builder, no renaming, its resource and scope.
  meshtel::v1::Span expected = Received('m', '2', '1').received_span();
  EXPECT_EQ(sdk->SerializeAsString(), expected.SerializeAsString()) << sdk->DebugString();
  EXPECT_EQ(sdk->parent_span_id(), proxy->span_id());
  EXPECT_EQ(proxy->scope_name(), "meshtel-proxy");
  EXPECT_EQ(sdk->anomalies(), 0u);  // its parent is there: no orphan
  absl::StatusOr<std::vector<StoredRecord>> trace = store_->ReadTrace(std::string(16, 'm'));
  ASSERT_TRUE(trace.ok());
  EXPECT_EQ(trace->size(), 2u);
  pipeline->Stop();
  // The log record did not hold the cursor back.
  absl::StatusOr<std::vector<StoredRecord>> after =
      store_->Read(RecordFamily::kLogs, *store_->LoadCursor(TracePipeline::kReaderName), kEnd, 10);
  ASSERT_TRUE(after.ok());
  EXPECT_TRUE(after->empty());
}

TEST_F(TracePipelineTest, ReceivedSpansAreSampledOnTheirFlagsAndTheirHttpStatus) {
  std::unique_ptr<TracePipeline> pipeline = StartPipeline();
  AppendReceived({
      Received('h', '1', 0, /*sampled=*/true),        // head decision: kept
      Received('d', '1', 0, /*sampled=*/false),       // nothing keeps it: dropped
      Received('e', '1', 0, /*sampled=*/false, 503),  // a 5xx with status unset: kept
      Received('o', '2', '9', /*sampled=*/false),     // orphan, not sampled: dropped
  });
  WaitForSpans(2);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  std::set<std::string> traces;
  for (const StoredRecord& stored : StoredSpans()) traces.insert(stored.span.trace_id());
  EXPECT_EQ(traces, (std::set<std::string>{std::string(16, 'h'), std::string(16, 'e')}));
}

TEST_F(TracePipelineTest, AReceivedSpanIsMarkedAndNormalizedLikeAnyOther) {
  config_.assembly.max_wait = absl::Milliseconds(300);  // decide the rootless traces soon
  std::unique_ptr<TracePipeline> pipeline = StartPipeline();
  meshtel::v1::RequestRecord zero_parent = Received('z', '1', 0);
  zero_parent.mutable_received_span()->set_parent_span_id(std::string(8, '\0'));
  zero_parent.mutable_received_span()->set_anomalies(0xff);  // not the sender's to set
  meshtel::v1::RequestRecord backwards = Received('b', '1', 0);
  backwards.mutable_received_span()->set_end_time_unix_nano(1);
  meshtel::v1::RequestRecord no_trace_id = Received('x', '1', 0);
  no_trace_id.mutable_received_span()->set_trace_id(std::string(16, '\0'));
  AppendReceived({zero_parent, backwards, no_trace_id, Received('w', '1', 0), Received('w', '1', 0),
                  Received('r', '2', '1')});
  std::vector<StoredRecord> spans = WaitForSpans(5);
  std::map<std::string, std::vector<const meshtel::v1::Span*>> by_trace;
  for (const StoredRecord& stored : spans) by_trace[stored.span.trace_id()].push_back(&stored.span);
  EXPECT_FALSE(by_trace.contains(std::string(16, '\0')));  // left out
  ASSERT_EQ(by_trace[std::string(16, 'z')].size(), 1u);
  const meshtel::v1::Span& root = *by_trace[std::string(16, 'z')][0];
  EXPECT_TRUE(root.parent_span_id().empty());
  EXPECT_EQ(root.anomalies(), 0u);
  ASSERT_EQ(by_trace[std::string(16, 'b')].size(), 1u);
  EXPECT_EQ(by_trace[std::string(16, 'b')][0]->anomalies(),
            1u << meshtel::v1::SPAN_ANOMALY_ENDS_BEFORE_START);
  ASSERT_EQ(by_trace[std::string(16, 'w')].size(), 2u);
  uint32_t marks = 0;
  for (const meshtel::v1::Span* span : by_trace[std::string(16, 'w')]) marks |= span->anomalies();
  EXPECT_NE(marks & (1u << meshtel::v1::SPAN_ANOMALY_DUPLICATE_SPAN_ID), 0u);
  ASSERT_EQ(by_trace[std::string(16, 'r')].size(), 1u);
  EXPECT_NE(
      by_trace[std::string(16, 'r')][0]->anomalies() & (1u << meshtel::v1::SPAN_ANOMALY_ORPHAN),
      0u);
}

TEST_F(TracePipelineTest, ARestartLosesNoPendingReceivedSpanAndWritesNoneTwice) {
  {
    std::unique_ptr<TracePipeline> pipeline = StartPipeline();
    AppendReceived({Received('p', '2', '1')});  // pending: its root (a proxy hop) comes later
    Append({Hop('a', '1', 0)});
    AppendReceived({Received('a', '2', '1'), ReceivedLog('a')});
    WaitForSpans(2);  // 'a' decided and written while 'p' waits
    pipeline->Stop();
  }
  ASSERT_TRUE(store_->Close().ok());
  store_.reset();
  OpenStore();
  Append({Hop('p', '1', 0)});
  std::unique_ptr<TracePipeline> pipeline = StartPipeline();
  std::vector<StoredRecord> spans = WaitForSpans(4);
  std::map<std::string, int> per_trace;
  for (const StoredRecord& stored : spans) ++per_trace[stored.span.trace_id()];
  EXPECT_EQ(per_trace[std::string(16, 'a')], 2);
  EXPECT_EQ(per_trace[std::string(16, 'p')], 2);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_EQ(StoredSpans().size(), 4u);
}

}  // namespace
}  // namespace meshtel::collector
