// End to end: real HTTP requests frontend → backend through two real meshtel-proxy sidecars,
// reported to a real meshtel-collector that assembles, tail-samples and stores the traces.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "collector/store/record_store.h"
#include "collector/traces/trace_json.h"
#include "tests/e2e/mesh_fixture.h"
#include "tests/support/jaeger_receiver.h"
#include "tests/support/otlp_receiver.h"

namespace meshtel::e2e {
namespace {

using collector::RecordFamily;
using collector::StoredRecord;
using collector::StoreKey;
using meshtel::v1::Span;

std::string StringAttribute(const Span& span, const std::string& key) {
  for (const auto& attribute : span.attributes()) {
    if (attribute.key() == key) return attribute.string_value();
  }
  return "";
}

class TraceMeshTest : public MeshTest {
 protected:
  // Each test configures tracing first, then starts the mesh (MeshTest::SetUp()).
  void SetUp() override {}

  // Proxies sample `proxy_percentage`% of requests; the collector keeps errors and what the
  // proxies sampled (no latency rule: a loaded machine must not make traces "slow").
  void Configure(double proxy_percentage, bool phase_spans) {
    proxy_extra_yaml_ =
        "tracing: {random_sampling_percentage: " + std::to_string(proxy_percentage) + "}\n";
    collector_extra_yaml_ = std::string("traces:\n  phase_spans: ") +
                            (phase_spans ? "true" : "false") +
                            "\n  assembly: {idle_timeout: 300ms, max_wait: 20s}\n"
                            "  sampling: {latency_threshold: 0s}\n";
  }

  double Sampled(const std::string& fragment) {
    return testing::SumSamples(Metrics(), "meshtel_traces_sampled_total", {fragment});
  }

  // Waits until the collector has decided `traces` traces (fails after `limit`).
  void WaitForDecisions(double traces, seconds limit) {
    EXPECT_TRUE(testing::WaitFor([&] { return Sampled("") >= traces; }, limit))
        << "decided " << Sampled("") << " of " << traces;
    // Nothing beyond: each request is one trace.
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    EXPECT_EQ(Sampled(""), traces);
  }

  // Every stored span, grouped by trace id (the collector stopped, the store opened here).
  std::map<std::string, std::vector<Span>> StoredTraces() {
    EXPECT_EQ(collector_->Terminate(), 0);
    collector::StoreConfig config;
    config.data_dir = dir_ + "/data";
    prometheus::Registry registry;
    absl::StatusOr<std::unique_ptr<collector::RecordStore>> store =
        collector::RecordStore::Open(config, registry);
    EXPECT_TRUE(store.ok()) << store.status();
    std::map<std::string, std::vector<Span>> traces;
    if (!store.ok()) return traces;
    absl::StatusOr<std::vector<StoredRecord>> spans = (*store)->Read(
        RecordFamily::kSpans, StoreKey{}, StoreKey{~uint64_t{0}, ~uint64_t{0}}, 10'000'000);
    EXPECT_TRUE(spans.ok());
    for (const StoredRecord& stored : *spans) traces[stored.span.trace_id()].push_back(stored.span);
    return traces;
  }
};

TEST_F(TraceMeshTest, EveryRequestIsOneTraceAcrossBothHopsWithPhaseSpansInside) {
  Configure(100, /*phase_spans=*/true);
  MeshTest::SetUp();
  constexpr int kRequests = 30;
  SendLoad(kRequests);
  WaitForDecisions(kRequests, seconds(60));
  EXPECT_EQ(Sampled("decision=\"kept\""), kRequests);

  const std::string metrics = Metrics();
  ASSERT_GT(testing::SumSamples(metrics, "meshtel_trace_spans_written_total", {}), 0);
  std::printf("spans fitted into their parent's window: %.0f\n",
              testing::SumSamples(metrics, "meshtel_trace_spans_fitted_total", {}));
  std::map<std::string, std::vector<Span>> traces = StoredTraces();
  ASSERT_EQ(traces.size(), static_cast<size_t>(kRequests));
  for (const auto& [trace_id, spans] : traces) {
    SCOPED_TRACE(collector::HexId(trace_id));
    std::map<std::string, const Span*> by_id;
    std::vector<const Span*> hops;
    for (const Span& span : spans) {
      EXPECT_EQ(span.anomalies(), 0u) << span.name();
      EXPECT_TRUE(by_id.emplace(span.span_id(), &span).second) << "duplicate span id";
      if (span.kind() != meshtel::v1::SPAN_KIND_INTERNAL) hops.push_back(&span);
    }
    // Three hops: the frontend's inbound (root, SERVER), its outbound call (CLIENT), the
    // backend's inbound (SERVER), each the parent of the next.
    ASSERT_EQ(hops.size(), 3u);
    std::sort(hops.begin(), hops.end(), [](const Span* a, const Span* b) {
      return a->start_time_unix_nano() < b->start_time_unix_nano();
    });
    EXPECT_TRUE(hops[0]->parent_span_id().empty());
    EXPECT_EQ(hops[0]->kind(), meshtel::v1::SPAN_KIND_SERVER);
    EXPECT_EQ(hops[0]->service_name(), "frontend.demo");
    EXPECT_EQ(hops[1]->kind(), meshtel::v1::SPAN_KIND_CLIENT);
    EXPECT_EQ(hops[1]->parent_span_id(), hops[0]->span_id());
    EXPECT_EQ(hops[1]->service_name(), "frontend.demo");
    // Named after the cluster's port, as Istio names the route: here the backend sidecar's.
    EXPECT_EQ(hops[1]->name(),
              "backend.demo.svc.cluster.local:" + std::to_string(backend_inbound_port_) + "/*");
    EXPECT_EQ(hops[2]->kind(), meshtel::v1::SPAN_KIND_SERVER);
    EXPECT_EQ(hops[2]->parent_span_id(), hops[1]->span_id());
    EXPECT_EQ(hops[2]->service_name(), "backend.demo");
    // Every span but the root lies within its parent's window, and carries the request's id.
    const std::string request_id = StringAttribute(*hops[0], "guid:x-request-id");
    EXPECT_EQ(request_id.size(), 36u);
    size_t phases = 0;
    for (const Span& span : spans) {
      EXPECT_EQ(StringAttribute(span, "guid:x-request-id"), request_id) << span.name();
      if (span.parent_span_id().empty()) continue;
      auto parent = by_id.find(span.parent_span_id());
      ASSERT_NE(parent, by_id.end()) << span.name();
      EXPECT_GE(span.start_time_unix_nano(), parent->second->start_time_unix_nano()) << span.name();
      EXPECT_LE(span.end_time_unix_nano(), parent->second->end_time_unix_nano()) << span.name();
      if (span.kind() == meshtel::v1::SPAN_KIND_INTERNAL) {
        ++phases;
        EXPECT_NE(parent->second->kind(), meshtel::v1::SPAN_KIND_INTERNAL);
      }
    }
    // Each hop shows at least reading the request, routing and the upstream wait.
    EXPECT_GE(phases, 9u);
  }

  // The admin API serves a stored trace as OTLP/JSON.
  StartCollector();
  const std::string trace_id = collector::HexId(traces.begin()->first);
  const testing::HttpResult found = testing::HttpGet(admin_port_, "/api/traces/" + trace_id);
  EXPECT_EQ(found.status, 200) << found.body;
  EXPECT_NE(found.body.find("\"traceId\":\"" + trace_id + "\""), std::string::npos);
  EXPECT_NE(found.body.find("\"proxy.upstream_wait\""), std::string::npos);
  EXPECT_EQ(testing::HttpGet(admin_port_, "/api/traces/" + std::string(32, '0')).status, 404);
  EXPECT_EQ(testing::HttpGet(admin_port_, "/api/traces/xyz").status, 400);
}

TEST_F(TraceMeshTest, TenPercentSamplingOverTwentyThousandRequestsIsWithinThreeSigma) {
  Configure(10, /*phase_spans=*/false);
  MeshTest::SetUp();
  constexpr int kRequests = 20000;
  SendLoad(kRequests);
  WaitForDecisions(kRequests, seconds(300));
  const double kept = Sampled("decision=\"kept\"");
  const double sigma = std::sqrt(kRequests * 0.1 * 0.9);
  std::printf("10%% sampling: %.0f of %d traces kept (expected %d ± %.0f)\n", kept, kRequests,
              kRequests / 10, 3 * sigma);
  EXPECT_NEAR(kept, kRequests * 0.1, 3 * sigma);
  EXPECT_EQ(Sampled("policy=\"error\""), 0);
}

TEST_F(TraceMeshTest, TailSamplingKeepsEveryServerErrorAtOnePercent) {
  Configure(1, /*phase_spans=*/false);
  MeshTest::SetUp();
  constexpr int kFailing = 200;
  constexpr int kOk = 1000;
  std::string output;
  testing::RunCommand(std::string(MESHTEL_DEMO_BIN) +
                          " load --target 127.0.0.1:" + std::to_string(frontend_inbound_port_) +
                          " --host frontend.demo --path /fail --concurrency 4 --requests " +
                          std::to_string(kFailing),
                      &output);
  EXPECT_NE(output.find("sent=" + std::to_string(kFailing)), std::string::npos) << output;
  SendLoad(kOk);
  WaitForDecisions(kFailing + kOk, seconds(120));
  EXPECT_EQ(Sampled("policy=\"error\""), kFailing);
  std::map<std::string, std::vector<Span>> traces = StoredTraces();
  size_t error_traces = 0;
  for (const auto& [trace_id, spans] : traces) {
    const bool error = std::any_of(spans.begin(), spans.end(), [](const Span& span) {
      return span.status_code() == meshtel::v1::SPAN_STATUS_CODE_ERROR;
    });
    if (!error) continue;
    ++error_traces;
    EXPECT_EQ(spans.size(), 3u);  // the whole trace, not only its failing spans
  }
  EXPECT_EQ(error_traces, static_cast<size_t>(kFailing));
  // The rest is the proxies' 1%.
  EXPECT_LE(traces.size() - error_traces, static_cast<size_t>(kOk / 10));
}

TEST_F(TraceMeshTest, JaegerAndOtlpBackendsDownForAWhileThenUpGetEveryKeptTrace) {
  // Three trace backends, all refusing at first: Jaeger (gRPC), OTLP over gRPC with gzip, OTLP
  // over HTTP/protobuf.
  testing::JaegerReceiver jaeger;
  testing::OtlpReceiver otlp_grpc;
  testing::OtlpReceiver otlp_http;
  jaeger.Answer(grpc::Status(grpc::StatusCode::UNAVAILABLE, "starting"));
  otlp_grpc.AnswerGrpc(grpc::Status(grpc::StatusCode::UNAVAILABLE, "starting"));
  otlp_http.AnswerHttp(503, {{"Retry-After", "1"}});
  Configure(100, /*phase_spans=*/false);
  collector_extra_yaml_ +=
      "exporters:\n"
      "  - {name: jaeger, type: jaeger, jaeger: {endpoint: \"" +
      jaeger.endpoint() +
      "\"},\n"
      "     retry: {initial_backoff: 50ms, max_backoff: 500ms}}\n"
      "  - {name: tempo, type: otlp, otlp: {protocol: grpc, compression: gzip, endpoint: \"" +
      otlp_grpc.grpc_endpoint() +
      "\"},\n"
      "     retry: {initial_backoff: 50ms, max_backoff: 500ms}}\n"
      "  - {name: otel, type: otlp, otlp: {protocol: http/protobuf, endpoint: \"" +
      otlp_http.http_url() +
      "\"},\n"
      "     retry: {initial_backoff: 50ms, max_backoff: 500ms}}\n";
  MeshTest::SetUp();
  constexpr int kRequests = 40;
  SendLoad(kRequests);
  WaitForDecisions(kRequests, seconds(60));
  // Refused while down: every backend has been tried, none has a span.
  EXPECT_TRUE(testing::WaitFor([&] { return !jaeger.Calls().empty(); }, seconds(20)));
  EXPECT_TRUE(testing::WaitFor([&] { return !otlp_grpc.Calls().empty(); }, seconds(20)));
  EXPECT_TRUE(testing::WaitFor([&] { return !otlp_http.Calls().empty(); }, seconds(20)));
  EXPECT_TRUE(jaeger.Spans().empty());
  EXPECT_TRUE(otlp_grpc.Spans().empty());
  EXPECT_TRUE(otlp_http.Spans().empty());

  jaeger.Answer(grpc::Status::OK);
  otlp_grpc.AnswerGrpc(grpc::Status::OK);
  otlp_http.AnswerHttp(200);
  const size_t spans = 3 * kRequests;
  EXPECT_TRUE(jaeger.WaitForSpans(spans, absl::Seconds(60)));
  EXPECT_TRUE(otlp_grpc.WaitForSpans(spans, absl::Seconds(60)));
  EXPECT_TRUE(otlp_http.WaitForSpans(spans, absl::Seconds(60)));

  // What each backend got is exactly the stored traces: same ids, parents, names, services,
  // times, and x-request-id on every span.
  std::map<std::string, std::vector<Span>> stored = StoredTraces();
  ASSERT_EQ(stored.size(), static_cast<size_t>(kRequests));
  std::map<std::string, const Span*> stored_by_id;
  for (const auto& [trace_id, trace_spans] : stored) {
    for (const Span& span : trace_spans) {
      stored_by_id[collector::HexId(trace_id) + "/" + collector::HexId(span.span_id())] = &span;
    }
  }
  for (const auto& [backend, received] :
       std::vector<std::pair<std::string, std::vector<testing::ReceivedSpan>>>{
           {"jaeger", jaeger.Spans()},
           {"otlp grpc", otlp_grpc.Spans()},
           {"otlp http", otlp_http.Spans()}}) {
    SCOPED_TRACE(backend);
    std::set<std::string> distinct;
    std::map<std::string, std::string> request_id_of_trace;
    for (const testing::ReceivedSpan& span : received) {
      const std::string id = span.trace_id + "/" + span.span_id;
      distinct.insert(id);
      auto it = stored_by_id.find(id);
      ASSERT_NE(it, stored_by_id.end()) << id << " was never stored";
      const Span& original = *it->second;
      EXPECT_EQ(span.parent_span_id, collector::HexId(original.parent_span_id()));
      EXPECT_EQ(span.name, original.name());
      EXPECT_EQ(span.service, original.service_name());
      EXPECT_EQ(span.start_unix_nano, original.start_time_unix_nano());
      EXPECT_EQ(span.end_unix_nano, original.end_time_unix_nano());
      EXPECT_EQ(span.kind, original.kind() == meshtel::v1::SPAN_KIND_CLIENT ? "client" : "server");
      auto request_id = span.attributes.find("guid:x-request-id");
      ASSERT_NE(request_id, span.attributes.end());
      const std::string value = std::get<std::string>(request_id->second);
      auto [known, inserted] = request_id_of_trace.emplace(span.trace_id, value);
      EXPECT_EQ(known->second, value) << "one request id per trace";
    }
    EXPECT_EQ(distinct.size(), spans) << "every kept span arrived";
    EXPECT_EQ(request_id_of_trace.size(), static_cast<size_t>(kRequests));
  }
  for (const testing::JaegerCall& call : jaeger.Calls()) {
    EXPECT_TRUE(call.official_mismatches.empty()) << call.official_mismatches.front();
  }
  for (const testing::OtlpCall& call : otlp_grpc.Calls()) {
    EXPECT_TRUE(call.official_mismatches.empty()) << call.official_mismatches.front();
  }
}

}  // namespace
}  // namespace meshtel::e2e
