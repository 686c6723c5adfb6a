#include "collector/traces/traces_config.h"

#include <string>

#include "collector/config/collector_config.h"
#include "gtest/gtest.h"

namespace meshtel::collector {
namespace {

absl::StatusOr<CollectorConfig> Parse(const std::string& yaml) {
  return ParseCollectorConfig(YAML::Load(yaml));
}

TEST(TracesConfigTest, DefaultsAreDocumented) {
  absl::StatusOr<CollectorConfig> config = Parse("{}");
  ASSERT_TRUE(config.ok()) << config.status();
  const TracesConfig& traces = config->traces;
  EXPECT_TRUE(traces.enabled);
  EXPECT_FALSE(traces.phase_spans);
  EXPECT_EQ(traces.service_name, TraceServiceName::kAppLabelAndNamespace);
  EXPECT_EQ(traces.mesh_id, "cluster.local");
  EXPECT_EQ(traces.assembly.idle_timeout, absl::Seconds(2));
  EXPECT_EQ(traces.assembly.max_wait, absl::Seconds(30));
  EXPECT_TRUE(traces.sampling.keep_errors);
  EXPECT_EQ(traces.sampling.latency_threshold, absl::Seconds(1));
  EXPECT_TRUE(traces.sampling.keep_head_sampled);
  EXPECT_EQ(traces.sampling.percentage, 0);
}

TEST(TracesConfigTest, ReadsEveryOption) {
  absl::StatusOr<CollectorConfig> config = Parse(R"(
traces:
  enabled: false
  phase_spans: true
  service_name: CANONICAL_NAME_AND_NAMESPACE
  mesh_id: mesh-1
  assembly: {idle_timeout: 500ms, max_wait: 10s, max_traces: 10, max_spans: 100}
  sampling: {keep_errors: false, latency_threshold: 0s, keep_head_sampled: false,
             percentage: 12.5, per_service_rate_limit: 3}
)");
  ASSERT_TRUE(config.ok()) << config.status();
  const TracesConfig& traces = config->traces;
  EXPECT_FALSE(traces.enabled);
  EXPECT_TRUE(traces.phase_spans);
  EXPECT_EQ(traces.service_name, TraceServiceName::kCanonicalNameAndNamespace);
  EXPECT_EQ(traces.mesh_id, "mesh-1");
  EXPECT_EQ(traces.assembly.idle_timeout, absl::Milliseconds(500));
  EXPECT_EQ(traces.assembly.max_traces, 10u);
  EXPECT_EQ(traces.sampling.percentage, 12.5);
  EXPECT_EQ(traces.sampling.per_service_rate_limit, 3);
}

TEST(TracesConfigTest, ErrorsNameTheField) {
  const std::pair<const char*, const char*> cases[] = {
      {"traces: {sampling: {percentage: 140}}",
       "traces.sampling.percentage: 140 is not in [0, 100]"},
      {"traces: {service_name: APP}", "traces.service_name: 'APP' is not one of"},
      {"traces: {assembly: {idle_timeout: 5s, max_wait: 1s}}", "traces.assembly.max_wait: 1s"},
      {"traces: {assembly: {idle_timeout: 0s}}", "traces.assembly.idle_timeout: 0 is not positive"},
      {"traces: {sampling: {per_service_rate_limit: -1}}",
       "traces.sampling.per_service_rate_limit: -1 is negative"},
      {"traces: {sampling: {bogus: 1}}", "traces.sampling.bogus"},
  };
  for (const auto& [yaml, message] : cases) {
    absl::StatusOr<CollectorConfig> config = Parse(yaml);
    ASSERT_FALSE(config.ok()) << yaml;
    EXPECT_NE(std::string(config.status().message()).find(message), std::string::npos)
        << yaml << " -> " << config.status();
  }
}

}  // namespace
}  // namespace meshtel::collector
