#include "collector/policy/policy_enforcer.h"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace meshtel::collector {
namespace {

meshtel::v1::RequestRecord Record(meshtel::v1::Reporter reporter, const std::string& workload,
                                  const std::string& ns = "shop", uint32_t code = 200) {
  meshtel::v1::RequestRecord record;
  record.set_reporter(reporter);
  record.set_response_code(code);
  record.set_method("GET");
  record.set_path("/cart");
  record.mutable_source()->set_workload(reporter == meshtel::v1::REPORTER_SOURCE ? workload
                                                                                 : "caller");
  record.mutable_source()->set_namespace_(ns);
  record.mutable_source()->set_app("caller-app");
  record.mutable_destination()->set_workload(reporter == meshtel::v1::REPORTER_SOURCE ? "callee"
                                                                                      : workload);
  record.mutable_destination()->set_namespace_(ns);
  record.mutable_destination()->set_app(workload + "-app");
  record.mutable_destination()->set_version("v1");
  return record;
}

PolicyDefaults Defaults() {
  PolicyDefaults defaults;
  defaults.exporters = {{"loki-a", false}, {"loki-b", false}, {"jaeger", true}, {"tempo", true}};
  defaults.phase_spans = false;
  return defaults;
}

// A resolver that records what it was asked and answers from a map by workload name.
struct FakeResolver {
  std::mutex mutex;
  std::vector<PolicyWorkload> asked;
  std::map<std::string, WorkloadPolicy> policies;

  PolicyEnforcer::Resolver Bind() {
    return [this](const PolicyWorkload& workload) {
      std::lock_guard<std::mutex> lock(mutex);
      asked.push_back(workload);
      auto it = policies.find(workload.name);
      return it == policies.end() ? WorkloadPolicy{} : it->second;
    };
  }
  size_t calls() {
    std::lock_guard<std::mutex> lock(mutex);
    return asked.size();
  }
};

std::unique_ptr<PolicyEnforcer> Make(FakeResolver& resolver, MeshDefaults mesh = {},
                                     PolicyDefaults defaults = Defaults(),
                                     prometheus::Registry* registry = nullptr,
                                     size_t max_workloads = 4096) {
  absl::StatusOr<std::unique_ptr<PolicyEnforcer>> enforcer = PolicyEnforcer::Create(
      std::move(defaults), resolver.Bind(), [mesh] { return mesh; }, registry, max_workloads);
  EXPECT_TRUE(enforcer.ok()) << enforcer.status();
  return *std::move(enforcer);
}

TEST(PolicyEnforcerTest, WithoutPolicyEveryWorkloadGetsTheDefaults) {
  FakeResolver resolver;
  auto enforcer = Make(resolver);
  const auto policy = enforcer->For(Record(meshtel::v1::REPORTER_DESTINATION, "cart"));
  EXPECT_TRUE(policy->metrics_enabled);
  EXPECT_EQ(policy->label_plans.get(), enforcer->defaults()->label_plans.get());
  for (const CompiledSidePolicy& side : policy->sides) {
    EXPECT_TRUE(side.logs_enabled);
    EXPECT_FALSE(side.filter.has_value());
    EXPECT_EQ(side.log_exporters, (std::vector<bool>{true, true, true, true}));
    EXPECT_TRUE(side.spans_enabled);
    EXPECT_FALSE(side.phase_spans);
    EXPECT_TRUE(side.all_span_exporters);
  }
}

TEST(PolicyEnforcerTest, ResolvesTheRecordsWorkloadBySide) {
  FakeResolver resolver;
  auto enforcer = Make(resolver);
  enforcer->For(Record(meshtel::v1::REPORTER_DESTINATION, "cart"));
  enforcer->For(Record(meshtel::v1::REPORTER_SOURCE, "frontend"));
  meshtel::v1::RequestRecord unspecified = Record(meshtel::v1::REPORTER_DESTINATION, "orders");
  unspecified.set_reporter(meshtel::v1::REPORTER_UNSPECIFIED);
  enforcer->For(unspecified);
  ASSERT_EQ(resolver.asked.size(), 3u);
  EXPECT_EQ(resolver.asked[0].name, "cart");
  EXPECT_EQ(resolver.asked[0].namespace_name, "shop");
  EXPECT_EQ(resolver.asked[0].labels,
            (std::map<std::string, std::string>{{"app", "cart-app"}, {"version", "v1"}}));
  EXPECT_EQ(resolver.asked[1].name, "frontend");
  EXPECT_EQ(resolver.asked[1].labels, (std::map<std::string, std::string>{{"app", "caller-app"}}));
  EXPECT_EQ(resolver.asked[2].name, "orders");  // unspecified: the destination
  EXPECT_EQ(PolicyEnforcer::SideOf(unspecified), PolicySide::kServer);
  EXPECT_EQ(PolicyEnforcer::SideOf(Record(meshtel::v1::REPORTER_SOURCE, "x")), PolicySide::kClient);
}

TEST(PolicyEnforcerTest, CompilesOncePerWorkloadUntilThePolicyChanges) {
  FakeResolver resolver;
  auto enforcer = Make(resolver);
  const auto record = Record(meshtel::v1::REPORTER_DESTINATION, "cart");
  const auto first = enforcer->For(record);
  const auto second = enforcer->For(record);
  EXPECT_EQ(first.get(), second.get());
  EXPECT_EQ(resolver.calls(), 1u);
  EXPECT_EQ(enforcer->cached_workloads(), 1u);
  enforcer->PolicyChanged();
  EXPECT_EQ(enforcer->cached_workloads(), 0u);
  const auto third = enforcer->For(record);
  EXPECT_EQ(resolver.calls(), 2u);
  EXPECT_NE(first.get(), third.get());
}

TEST(PolicyEnforcerTest, AnnouncedLabelsJoinTheRecordsAndRecompile) {
  FakeResolver resolver;
  auto enforcer = Make(resolver);
  const auto record = Record(meshtel::v1::REPORTER_DESTINATION, "cart");
  enforcer->For(record);
  enforcer->NoteWorkloadLabels({"shop", "cart", {{"tier", "gold"}, {"app", "cart-pod"}}});
  enforcer->For(record);
  ASSERT_EQ(resolver.asked.size(), 2u);
  EXPECT_EQ(resolver.asked[1].labels,
            (std::map<std::string, std::string>{
                {"app", "cart-pod"}, {"tier", "gold"}, {"version", "v1"}}));
  // The same labels again change nothing.
  enforcer->NoteWorkloadLabels({"shop", "cart", {{"tier", "gold"}, {"app", "cart-pod"}}});
  enforcer->For(record);
  EXPECT_EQ(resolver.calls(), 2u);
}

TEST(PolicyEnforcerTest, MetricPlansAppendTheWorkloadsOverridesAndAreShared) {
  FakeResolver resolver;
  MetricOverrideConfig disable_count;
  disable_count.metric = IstioMetric::kRequestCount;
  disable_count.disabled = true;
  MetricOverrideConfig tag;
  tag.tag_overrides.push_back({.label = "user_tier", .value = "request.headers['x-user-tier']"});
  resolver.policies["cart"].metrics.overrides = {disable_count};
  resolver.policies["orders"].metrics.overrides = {disable_count};
  resolver.policies["tagged"].metrics.overrides = {tag};
  PolicyDefaults defaults = Defaults();
  MetricOverrideConfig collector_wide;
  collector_wide.metric = IstioMetric::kRequestSize;
  collector_wide.disabled = true;
  defaults.metric_overrides = {collector_wide};
  auto enforcer = Make(resolver, {}, defaults);

  const auto cart = enforcer->For(Record(meshtel::v1::REPORTER_DESTINATION, "cart"));
  const auto orders = enforcer->For(Record(meshtel::v1::REPORTER_DESTINATION, "orders"));
  const auto tagged = enforcer->For(Record(meshtel::v1::REPORTER_DESTINATION, "tagged"));
  const auto plain = enforcer->For(Record(meshtel::v1::REPORTER_DESTINATION, "plain"));
  EXPECT_EQ(cart->label_plans.get(), orders->label_plans.get());
  EXPECT_EQ(plain->label_plans.get(), enforcer->defaults()->label_plans.get());
  EXPECT_TRUE(cart->label_plans->plan(IstioMetric::kRequestCount, RecordMode::kServer).disabled);
  EXPECT_TRUE(cart->label_plans->plan(IstioMetric::kRequestSize, RecordMode::kServer).disabled);
  EXPECT_FALSE(plain->label_plans->plan(IstioMetric::kRequestCount, RecordMode::kServer).disabled);
  EXPECT_TRUE(plain->label_plans->plan(IstioMetric::kRequestSize, RecordMode::kServer).disabled);
  const LabelPlan& tagged_plan =
      tagged->label_plans->plan(IstioMetric::kRequestCount, RecordMode::kServer);
  EXPECT_EQ(tagged_plan.names.back(), "user_tier");
  EXPECT_EQ(tagged->label_plans->captured_headers(), (std::vector<std::string>{"x-user-tier"}));
}

TEST(PolicyEnforcerTest, MetricsProvidersWithoutPrometheusStopAggregation) {
  FakeResolver resolver;
  resolver.policies["cart"].metrics.providers = {"otel-metrics"};
  resolver.policies["orders"].metrics.providers = {"prometheus"};
  auto enforcer = Make(resolver);
  EXPECT_FALSE(enforcer->For(Record(meshtel::v1::REPORTER_DESTINATION, "cart"))->metrics_enabled);
  EXPECT_TRUE(enforcer->For(Record(meshtel::v1::REPORTER_DESTINATION, "orders"))->metrics_enabled);

  // MeshConfig's defaultProviders.metrics applies to workloads that name none.
  FakeResolver other;
  MeshDefaults mesh;
  mesh.default_metrics_providers = {"otel-metrics"};
  auto defaulted = Make(other, mesh);
  EXPECT_FALSE(defaulted->For(Record(meshtel::v1::REPORTER_DESTINATION, "x"))->metrics_enabled);
}

TEST(PolicyEnforcerTest, AccessLogSidesFilterFormatAndProviders) {
  FakeResolver resolver;
  WorkloadPolicy& cart = resolver.policies["cart"];
  cart.access_logging[static_cast<size_t>(PolicySide::kServer)].filter = "response.code >= 500";
  cart.access_logging[static_cast<size_t>(PolicySide::kServer)].format =
      AccessLogConfig{.format = "%RESPONSE_CODE% %REQ(:PATH)%\n"};
  cart.access_logging[static_cast<size_t>(PolicySide::kServer)].providers = {"loki"};
  cart.access_logging[static_cast<size_t>(PolicySide::kClient)].disabled = true;
  MeshDefaults mesh;
  mesh.extension_providers = {{"loki", {"loki-b"}}, {"tempo", {"tempo"}}};
  auto enforcer = Make(resolver, mesh);

  const auto server_500 = Record(meshtel::v1::REPORTER_DESTINATION, "cart", "shop", 503);
  const auto server_200 = Record(meshtel::v1::REPORTER_DESTINATION, "cart", "shop", 200);
  const auto client = Record(meshtel::v1::REPORTER_SOURCE, "cart", "shop", 503);

  AccessLogRouting::Line line = enforcer->Route(server_500, "loki-b");
  ASSERT_NE(line.format, nullptr);
  std::string text;
  line.format->Render(server_500, text);
  EXPECT_EQ(text, "503 /cart\n");
  EXPECT_TRUE(line.deliver);
  EXPECT_FALSE(enforcer->Route(server_500, "loki-a").deliver);       // not its provider
  EXPECT_FALSE(enforcer->Route(server_200, "loki-b").deliver);       // filtered out
  EXPECT_NE(enforcer->Route(server_200, "loki-b").format, nullptr);  // still has its format
  EXPECT_FALSE(enforcer->Route(client, "loki-b").deliver);           // side disabled
  // An exporter the enforcer was not told about (a replay target) gets what passes.
  EXPECT_TRUE(enforcer->Route(server_500, "one-off").deliver);

  // Another workload: every exporter, the collector's format (Istio's default).
  const auto other = Record(meshtel::v1::REPORTER_DESTINATION, "orders");
  line = enforcer->Route(other, "loki-a");
  ASSERT_NE(line.format, nullptr);
  text.clear();
  line.format->Render(other, text);
  EXPECT_NE(text.find("\"GET /cart"), std::string::npos) << text;
}

TEST(PolicyEnforcerTest, DefaultAccessLogProvidersComeFromTheMeshConfig) {
  FakeResolver resolver;
  MeshDefaults mesh;
  mesh.extension_providers = {{"loki", {"loki-a"}}};
  mesh.default_access_log_providers = {"loki"};
  auto enforcer = Make(resolver, mesh);
  const auto record = Record(meshtel::v1::REPORTER_DESTINATION, "cart");
  EXPECT_TRUE(enforcer->Route(record, "loki-a").deliver);
  EXPECT_FALSE(enforcer->Route(record, "loki-b").deliver);
}

TEST(PolicyEnforcerTest, TracingSpansPhasesTagsAndProviders) {
  FakeResolver resolver;
  WorkloadPolicy& cart = resolver.policies["cart"];
  TracingPolicy& server = cart.tracing[static_cast<size_t>(PolicySide::kServer)];
  server.phase_spans = true;
  server.providers = {"tempo"};
  server.custom_tags = {
      {.name = "route", .kind = CustomTag::Kind::kFormatter, .value = "%ROUTE_NAME%"},
      {.name = "tier", .kind = CustomTag::Kind::kLiteral, .value = "gold"}};
  cart.tracing[static_cast<size_t>(PolicySide::kClient)].disable_span_reporting = true;
  MeshDefaults mesh;
  mesh.extension_providers = {{"tempo", {"tempo", "loki-a"}}};
  auto enforcer = Make(resolver, mesh);
  const auto policy = enforcer->For(Record(meshtel::v1::REPORTER_DESTINATION, "cart"));
  const CompiledSidePolicy& server_side = policy->side(PolicySide::kServer);
  EXPECT_TRUE(server_side.spans_enabled);
  EXPECT_TRUE(server_side.phase_spans);
  EXPECT_FALSE(server_side.all_span_exporters);
  EXPECT_EQ(server_side.span_exporters, (std::vector<std::string>{"tempo"}));  // spans only
  ASSERT_EQ(server_side.formatter_tags.size(), 1u);
  EXPECT_EQ(server_side.formatter_tags[0].name, "route");
  const CompiledSidePolicy& client_side = policy->side(PolicySide::kClient);
  EXPECT_FALSE(client_side.spans_enabled);
  EXPECT_FALSE(client_side.phase_spans);
  EXPECT_TRUE(client_side.all_span_exporters);
}

TEST(PolicyEnforcerTest, AWorkloadPolicyThatDoesNotCompileFallsBackToTheDefaults) {
  FakeResolver resolver;
  resolver.policies["cart"].access_logging[1].filter = "response.cod >= 500";
  prometheus::Registry registry;
  auto enforcer = Make(resolver, {}, Defaults(), &registry);
  const auto policy = enforcer->For(Record(meshtel::v1::REPORTER_DESTINATION, "cart"));
  EXPECT_EQ(policy.get(), enforcer->defaults().get());
  EXPECT_EQ(enforcer->compile_errors(), 1u);
  enforcer->For(Record(meshtel::v1::REPORTER_DESTINATION, "cart"));
  EXPECT_EQ(enforcer->compile_errors(), 1u);  // cached: not compiled again
  bool counted = false;
  for (const auto& family : registry.Collect()) {
    if (family.name == "meshtel_policy_compile_errors_total") {
      counted = family.metric.at(0).counter.value == 1;
    }
  }
  EXPECT_TRUE(counted);
}

TEST(PolicyEnforcerTest, InvalidDefaultsAreRefused) {
  PolicyDefaults defaults = Defaults();
  defaults.access_log.format = "%NOPE%";
  FakeResolver resolver;
  EXPECT_FALSE(PolicyEnforcer::Create(defaults, resolver.Bind()).ok());
}

TEST(PolicyEnforcerTest, TheCacheIsBounded) {
  FakeResolver resolver;
  auto enforcer = Make(resolver, {}, Defaults(), nullptr, 8);
  for (int i = 0; i < 100; ++i) {
    enforcer->For(Record(meshtel::v1::REPORTER_DESTINATION, "w" + std::to_string(i)));
    EXPECT_LE(enforcer->cached_workloads(), 8u);
  }
}

TEST(PolicyEnforcerTest, ManyReadersWhileThePolicyChanges) {
  FakeResolver resolver;
  resolver.policies["cart"].access_logging[1].disabled = true;
  auto enforcer = Make(resolver);
  std::atomic<int> wrong{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 4; ++t) {
    readers.emplace_back([&, t] {
      const auto cart = Record(meshtel::v1::REPORTER_DESTINATION, "cart");
      const auto other = Record(meshtel::v1::REPORTER_DESTINATION, "w" + std::to_string(t));
      for (int i = 0; i < 2000; ++i) {
        if (enforcer->For(cart)->side(PolicySide::kServer).logs_enabled) ++wrong;
        if (!enforcer->For(other)->side(PolicySide::kServer).logs_enabled) ++wrong;
      }
    });
  }
  for (int i = 0; i < 50; ++i) {
    enforcer->PolicyChanged();
    enforcer->NoteWorkloadLabels({"shop", "cart", {{"n", std::to_string(i)}}});
  }
  for (std::thread& reader : readers) reader.join();
  EXPECT_EQ(wrong.load(), 0);
}

}  // namespace
}  // namespace meshtel::collector
