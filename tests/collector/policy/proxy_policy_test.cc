#include "collector/policy/proxy_policy.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace meshtel::collector {
namespace {

constexpr size_t kClient = static_cast<size_t>(PolicySide::kClient);
constexpr size_t kServer = static_cast<size_t>(PolicySide::kServer);

CustomTag Tag(std::string name, CustomTag::Kind kind, std::string value,
              std::string default_value = "") {
  return CustomTag{.name = std::move(name),
                   .kind = kind,
                   .value = std::move(value),
                   .default_value = std::move(default_value)};
}

MetricOverrideConfig HeaderLabel(WorkloadMode mode, std::string label, std::string header) {
  MetricOverrideConfig override_config;
  override_config.mode = mode;
  override_config.tag_overrides.push_back(
      {.label = label, .value = "request.headers['" + header + "']", .path = "x"});
  override_config.path = "metrics.overrides[0]";
  return override_config;
}

MetricOverrideConfig DisableAll(WorkloadMode mode) {
  MetricOverrideConfig override_config;
  override_config.mode = mode;
  override_config.disabled = true;
  return override_config;
}

TEST(ProxyPolicyTest, AnEmptyPolicyReportsEverythingAndLeavesSamplingToTheProxy) {
  const meshtel::v1::ProxyPolicy policy = ToProxyPolicy(WorkloadPolicy{}, MeshDefaults{}, {});
  ASSERT_TRUE(policy.has_outbound());
  ASSERT_TRUE(policy.has_inbound());
  EXPECT_FALSE(policy.outbound().has_random_sampling_percentage());
  EXPECT_FALSE(policy.inbound().has_random_sampling_percentage());
  EXPECT_TRUE(policy.outbound().report());
  EXPECT_TRUE(policy.inbound().report());
  EXPECT_EQ(policy.outbound().custom_tags_size(), 0);
  EXPECT_EQ(policy.capture_request_headers_size(), 0);
}

TEST(ProxyPolicyTest, SamplingComesFromTheSideElseTheMeshDefault) {
  WorkloadPolicy workload;
  workload.tracing[kServer].random_sampling_percentage = 100;
  MeshDefaults mesh;
  mesh.default_sampling_percentage = 2.5;
  const meshtel::v1::ProxyPolicy policy = ToProxyPolicy(workload, mesh, {});
  EXPECT_EQ(policy.inbound().random_sampling_percentage(), 100);
  ASSERT_TRUE(policy.outbound().has_random_sampling_percentage());
  EXPECT_EQ(policy.outbound().random_sampling_percentage(), 2.5);
  // A side set to 0 is 0, not the mesh default.
  workload.tracing[kClient].random_sampling_percentage = 0;
  EXPECT_EQ(ToProxyPolicy(workload, mesh, {}).outbound().random_sampling_percentage(), 0);
  EXPECT_TRUE(ToProxyPolicy(workload, mesh, {}).outbound().has_random_sampling_percentage());
}

TEST(ProxyPolicyTest, CustomTagsLeaveFormatterTagsToTheCollector) {
  WorkloadPolicy workload;
  workload.tracing[kClient].custom_tags = {
      Tag("pod", CustomTag::Kind::kEnvironment, "POD_NAME", "unknown-pod"),
      Tag("route", CustomTag::Kind::kFormatter, "%ROUTE_NAME%"),
      Tag("tier", CustomTag::Kind::kLiteral, "gold"),
      Tag("user", CustomTag::Kind::kHeader, "x-user", "anonymous"),
  };
  const meshtel::v1::ProxyPolicy policy = ToProxyPolicy(workload, MeshDefaults{}, {});
  ASSERT_EQ(policy.outbound().custom_tags_size(), 3);
  EXPECT_EQ(policy.outbound().custom_tags(0).name(), "pod");
  EXPECT_EQ(policy.outbound().custom_tags(0).environment(), "POD_NAME");
  EXPECT_EQ(policy.outbound().custom_tags(0).default_value(), "unknown-pod");
  EXPECT_EQ(policy.outbound().custom_tags(1).name(), "tier");
  EXPECT_EQ(policy.outbound().custom_tags(1).literal(), "gold");
  EXPECT_EQ(policy.outbound().custom_tags(2).name(), "user");
  EXPECT_EQ(policy.outbound().custom_tags(2).header(), "x-user");
  EXPECT_EQ(policy.outbound().custom_tags(2).default_value(), "anonymous");
  EXPECT_EQ(policy.inbound().custom_tags_size(), 0);
  // The header tag's header is captured.
  ASSERT_EQ(policy.capture_request_headers_size(), 1);
  EXPECT_EQ(policy.capture_request_headers(0), "x-user");
}

TEST(ProxyPolicyTest, CapturesTheHeadersOfTagsAndOfTheCollectorsAndWorkloadsOverrides) {
  WorkloadPolicy workload;
  workload.tracing[kServer].custom_tags = {Tag("user", CustomTag::Kind::kHeader, "x-user")};
  workload.metrics.overrides = {HeaderLabel(WorkloadMode::kServer, "tier", "x-tier"),
                                HeaderLabel(WorkloadMode::kClient, "user", "x-user")};
  const std::vector<MetricOverrideConfig> collector = {
      HeaderLabel(WorkloadMode::kClientAndServer, "region", "x-region")};
  EXPECT_EQ(ProxyCaptureHeaders(workload, collector),
            (std::vector<std::string>{"x-region", "x-tier", "x-user"}));
  const meshtel::v1::ProxyPolicy policy = ToProxyPolicy(workload, MeshDefaults{}, collector);
  EXPECT_EQ(std::vector<std::string>(policy.capture_request_headers().begin(),
                                     policy.capture_request_headers().end()),
            (std::vector<std::string>{"x-region", "x-tier", "x-user"}));
}

TEST(ProxyPolicyTest, CapturesTheHeadersOfAccessLogFiltersFormatsAndFormatterTags) {
  WorkloadPolicy workload;
  workload.tracing[kClient].custom_tags = {
      Tag("tenant", CustomTag::Kind::kFormatter, "%REQ(X-Tenant)%-%ROUTE_NAME%")};
  workload.access_logging[kServer].filter = "request.headers['x-debug'] == '1'";
  AccessLogConfig format;
  format.format = "%RESPONSE_CODE% %REQ(X-Session)% %REQ(USER-AGENT)%\n";
  workload.access_logging[kServer].format = format;
  // A side whose access logging is off needs none of its headers.
  workload.access_logging[kClient].disabled = true;
  workload.access_logging[kClient].filter = "request.headers['x-off'] == '1'";
  EXPECT_EQ(ProxyCaptureHeaders(workload, {}),
            (std::vector<std::string>{"x-debug", "x-session", "x-tenant"}));
}

TEST(ProxyPolicyTest, ReportIsOffOnlyWhenSpansLogsAndEveryMetricOfTheSideAreOff) {
  WorkloadPolicy workload;
  workload.tracing[kClient].disable_span_reporting = true;
  workload.access_logging[kClient].disabled = true;
  EXPECT_TRUE(ToProxyPolicy(workload, MeshDefaults{}, {}).outbound().report());  // metrics on
  workload.metrics.overrides = {DisableAll(WorkloadMode::kClient)};
  meshtel::v1::ProxyPolicy policy = ToProxyPolicy(workload, MeshDefaults{}, {});
  EXPECT_FALSE(policy.outbound().report());
  EXPECT_TRUE(policy.inbound().report());
  // The server side has its metrics off too but still logs and reports spans.
  workload.metrics.overrides = {DisableAll(WorkloadMode::kClientAndServer)};
  policy = ToProxyPolicy(workload, MeshDefaults{}, {});
  EXPECT_FALSE(policy.outbound().report());
  EXPECT_TRUE(policy.inbound().report());
  // A later override turning a metric back on keeps the side reporting.
  MetricOverrideConfig request_count;
  request_count.metric = IstioMetric::kRequestCount;
  request_count.mode = WorkloadMode::kClient;
  request_count.disabled = false;
  workload.metrics.overrides.push_back(request_count);
  EXPECT_TRUE(ToProxyPolicy(workload, MeshDefaults{}, {}).outbound().report());
  // The collector's own overrides count too.
  workload.metrics.overrides.clear();
  EXPECT_FALSE(ToProxyPolicy(workload, MeshDefaults{}, {DisableAll(WorkloadMode::kClient)})
                   .outbound()
                   .report());
}

TEST(ProxyPolicyTest, VersionsAreEqualForEqualPoliciesAndDifferOtherwise) {
  WorkloadPolicy workload;
  workload.tracing[kClient].random_sampling_percentage = 10;
  workload.applied = {"shop/reviews"};
  const meshtel::v1::ProxyPolicy a = ToProxyPolicy(workload, MeshDefaults{}, {});
  const meshtel::v1::ProxyPolicy b = ToProxyPolicy(workload, MeshDefaults{}, {});
  EXPECT_EQ(ProxyPolicyVersion(a), ProxyPolicyVersion(b));
  EXPECT_EQ(ProxyPolicyVersion(a).size(), 16u);
  workload.tracing[kClient].random_sampling_percentage = 11;
  EXPECT_NE(ProxyPolicyVersion(ToProxyPolicy(workload, MeshDefaults{}, {})), ProxyPolicyVersion(a));
}

}  // namespace
}  // namespace meshtel::collector
