#include "proxy/config/proxy_config.h"

#include <map>
#include <string>
#include <string_view>

#include "gtest/gtest.h"
#include "yaml-cpp/yaml.h"

namespace meshtel::proxy {
namespace {

const std::string kTestdata = std::string(MESHTEL_SOURCE_DIR) + "/tests/proxy/config/testdata/";

TEST(ProxyConfigTest, EmptyFileMeansDefaults) {
  absl::StatusOr<ProxyConfig> config = ParseProxyConfig(YAML::Load(""));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->log_level, "info");
  EXPECT_EQ(config->instance_id, "");
  EXPECT_EQ(config->io_threads, 0u);
  EXPECT_EQ(config->max_body_bytes, 0u);
  EXPECT_EQ(config->idle_timeout, absl::Seconds(60));
  EXPECT_EQ(config->connect_timeout, absl::Seconds(5));
  EXPECT_EQ(config->drain_timeout, absl::Seconds(5));
  EXPECT_EQ(config->workload.namespace_name, "default");
  EXPECT_EQ(config->workload.cluster, "Kubernetes");
  EXPECT_EQ(config->workload.service_host, "");
  EXPECT_TRUE(config->inbound.enabled);
  EXPECT_EQ(config->inbound.listen, (common::HostPort{"0.0.0.0", 15006}));
  EXPECT_EQ(config->inbound.app, (common::HostPort{"127.0.0.1", 8080}));
  EXPECT_EQ(config->inbound.timeout, absl::Seconds(15));
  EXPECT_TRUE(config->outbound.enabled);
  EXPECT_EQ(config->outbound.listen, (common::HostPort{"127.0.0.1", 15001}));
  EXPECT_EQ(config->outbound.timeout, absl::Seconds(15));
  EXPECT_TRUE(config->outbound.routes.empty());
  EXPECT_EQ(config->reporter.collectors, (std::vector<common::HostPort>{{"127.0.0.1", 15140}}));
  EXPECT_EQ(config->reporter.max_batch_records, 512u);
  EXPECT_EQ(config->reporter.max_queued_records, 8192u);
  EXPECT_EQ(config->reporter.failover_after, absl::Seconds(5));
  EXPECT_EQ(config->reporter.flush_interval, absl::Milliseconds(200));
  EXPECT_EQ(config->reporter.max_unacked_bytes, 16u << 20);
  EXPECT_EQ(config->reporter.reconnect_initial_backoff, absl::Milliseconds(100));
  EXPECT_EQ(config->reporter.reconnect_max_backoff, absl::Seconds(5));
  EXPECT_EQ(config->tracing.random_sampling_percentage, 1.0);
  EXPECT_EQ(config->tracing.propagation, (std::vector<std::string>{"w3c", "b3multi"}));
  EXPECT_TRUE(config->admin.enabled);
  EXPECT_EQ(config->admin.listen, (common::HostPort{"127.0.0.1", 15000}));
  EXPECT_FALSE(config->inbound.transparent);
  EXPECT_FALSE(config->outbound.transparent);
  EXPECT_EQ(config->upstream.max_connections_per_destination, 1024u);
  EXPECT_EQ(config->upstream.max_pending_requests, 1024u);
  EXPECT_EQ(config->upstream.queue_timeout, absl::Seconds(1));
  EXPECT_EQ(config->upstream.idle_timeout, absl::Seconds(60));
  EXPECT_EQ(config->access_log.path, "");  // off
  EXPECT_EQ(config->access_log.render.encoding, collector::AccessLogEncoding::kText);
  EXPECT_EQ(config->access_log.render.format, "");  // Istio's default
  EXPECT_EQ(config->access_log.max_buffered_bytes, 4u << 20);
}

TEST(ProxyConfigTest, EveryKeyDecodes) {
  absl::StatusOr<ProxyConfig> config = LoadProxyConfig(kTestdata + "valid.yaml");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->log_level, "warn");
  EXPECT_EQ(config->instance_id, "proxy-a");
  EXPECT_EQ(config->io_threads, 3u);
  EXPECT_EQ(config->max_body_bytes, 1048576u);
  EXPECT_EQ(config->idle_timeout, absl::Seconds(30));
  EXPECT_EQ(config->connect_timeout, absl::Seconds(2));
  EXPECT_EQ(config->drain_timeout, absl::Seconds(7));
  EXPECT_EQ(config->workload.name, "reviews-v1");
  EXPECT_EQ(config->workload.namespace_name, "shop");
  EXPECT_EQ(config->workload.app, "reviews");
  EXPECT_EQ(config->workload.version, "v1");
  EXPECT_EQ(config->workload.canonical_service, "reviews");
  EXPECT_EQ(config->workload.canonical_revision, "v1");
  EXPECT_EQ(config->workload.cluster, "east");
  EXPECT_EQ(config->workload.principal, "spiffe://cluster.local/ns/shop/sa/reviews");
  EXPECT_EQ(config->workload.service_host, "reviews.shop.svc.cluster.local");
  EXPECT_FALSE(config->inbound.enabled);
  EXPECT_EQ(config->inbound.listen, (common::HostPort{"127.0.0.1", 9006}));
  EXPECT_EQ(config->inbound.app, (common::HostPort{"127.0.0.1", 9080}));
  EXPECT_EQ(config->inbound.timeout, absl::Seconds(3));
  EXPECT_EQ(config->outbound.listen, (common::HostPort{"127.0.0.1", 9001}));
  EXPECT_EQ(config->outbound.timeout, absl::Seconds(4));
  ASSERT_EQ(config->outbound.routes.size(), 2u);
  EXPECT_EQ(config->outbound.routes[0].host, "ratings.shop.svc.cluster.local");
  ASSERT_EQ(config->outbound.routes[0].addresses.size(), 2u);
  EXPECT_EQ(config->outbound.routes[0].addresses[1], (common::HostPort{"127.0.0.1", 9102}));
  EXPECT_EQ(config->outbound.routes[0].timeout, absl::Milliseconds(250));
  EXPECT_EQ(config->outbound.routes[1].timeout, absl::ZeroDuration());
  EXPECT_EQ(config->reporter.collectors,
            (std::vector<common::HostPort>{{"127.0.0.1", 9140}, {"127.0.0.1", 9141}}));
  EXPECT_TRUE(config->inbound.transparent);
  EXPECT_TRUE(config->outbound.transparent);
  EXPECT_EQ(config->upstream.max_connections_per_destination, 64u);
  EXPECT_EQ(config->upstream.max_pending_requests, 32u);
  EXPECT_EQ(config->upstream.queue_timeout, absl::Milliseconds(250));
  EXPECT_EQ(config->upstream.idle_timeout, absl::Seconds(20));
  EXPECT_EQ(config->reporter.max_batch_records, 100u);
  EXPECT_EQ(config->reporter.max_queued_records, 4096u);
  EXPECT_EQ(config->reporter.failover_after, absl::Seconds(2));
  EXPECT_EQ(config->reporter.flush_interval, absl::Milliseconds(50));
  EXPECT_EQ(config->reporter.max_unacked_bytes, 1048576u);
  EXPECT_EQ(config->reporter.reconnect_initial_backoff, absl::Milliseconds(10));
  EXPECT_EQ(config->reporter.reconnect_max_backoff, absl::Seconds(1));
  EXPECT_EQ(config->tracing.random_sampling_percentage, 12.5);
  EXPECT_EQ(config->tracing.propagation, (std::vector<std::string>{"b3"}));
  EXPECT_FALSE(config->admin.enabled);
  EXPECT_EQ(config->admin.listen, (common::HostPort{"127.0.0.1", 9000}));
  EXPECT_EQ(config->access_log.path, "/var/log/meshtel/access.log");
  EXPECT_EQ(config->access_log.render.encoding, collector::AccessLogEncoding::kJson);
  EXPECT_EQ(config->access_log.render.json_format,
            (std::vector<collector::AccessLogJsonField>{{"method", "%REQ(:METHOD)%"},
                                                        {"code", "%RESPONSE_CODE%"}}));
  EXPECT_EQ(config->access_log.max_buffered_bytes, 1048576u);
  EXPECT_EQ(config->workload.labels,
            (std::map<std::string, std::string>{
                {"app", "reviews"}, {"track", "canary"}, {"version", "v1"}}));
  EXPECT_FALSE(config->policy.enabled);
}

TEST(ProxyConfigTest, ServiceHostDefaultsFromWorkload) {
  absl::StatusOr<ProxyConfig> config =
      ParseProxyConfig(YAML::Load("workload: {name: cart, namespace: shop}"));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->workload.service_host, "cart.shop.svc.cluster.local");
}

TEST(ProxyConfigTest, SingleCollectorKeyStillWorks) {
  absl::StatusOr<ProxyConfig> config =
      ParseProxyConfig(YAML::Load("reporter: {collector: \"10.0.0.9:15140\"}"));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->reporter.collectors, (std::vector<common::HostPort>{{"10.0.0.9", 15140}}));
}

TEST(ProxyConfigTest, IstioEnvironmentFillsWhatTheFileLeavesEmpty) {
  const std::map<std::string, std::string> env = {{"ISTIO_META_WORKLOAD_NAME", "reviews-v2"},
                                                  {"POD_NAME", "reviews-v2-7d9f-abcde"},
                                                  {"POD_NAMESPACE", "bookinfo"},
                                                  {"ISTIO_META_CLUSTER_ID", "west"},
                                                  {"ISTIO_META_APP", "reviews"},
                                                  {"ISTIO_META_VERSION", "v2"},
                                                  {"SERVICE_ACCOUNT", "bookinfo-reviews"}};
  const auto getenv = [&](const char* name) -> const char* {
    auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  };
  WorkloadConfig workload;
  ApplyIstioEnvironment(workload, /*namespace_set=*/false, getenv);
  EXPECT_EQ(workload.name, "reviews-v2");
  EXPECT_EQ(workload.namespace_name, "bookinfo");
  EXPECT_EQ(workload.cluster, "west");
  EXPECT_EQ(workload.app, "reviews");
  EXPECT_EQ(workload.version, "v2");
  EXPECT_EQ(workload.principal, "spiffe://cluster.local/ns/bookinfo/sa/bookinfo-reviews");
  EXPECT_EQ(workload.canonical_service, "");

  // What the file set wins.
  WorkloadConfig from_file;
  from_file.name = "ratings";
  from_file.namespace_name = "shop";
  from_file.cluster = "east";
  ApplyIstioEnvironment(from_file, /*namespace_set=*/true, getenv);
  EXPECT_EQ(from_file.name, "ratings");
  EXPECT_EQ(from_file.namespace_name, "shop");
  EXPECT_EQ(from_file.cluster, "east");
  EXPECT_EQ(from_file.principal, "spiffe://cluster.local/ns/shop/sa/bookinfo-reviews");

  // POD_NAME stands in when the workload name is not given.
  WorkloadConfig pod_only;
  ApplyIstioEnvironment(pod_only, false, [](const char* name) -> const char* {
    return std::string_view(name) == "POD_NAME" ? "cart-0" : nullptr;
  });
  EXPECT_EQ(pod_only.name, "cart-0");
  EXPECT_EQ(pod_only.namespace_name, "default");
}

TEST(ProxyConfigTest, PolicyIsOnByDefaultAndCanBeTurnedOff) {
  absl::StatusOr<ProxyConfig> config = ParseProxyConfig(YAML::Load(""));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_TRUE(config->policy.enabled);
  config = ParseProxyConfig(YAML::Load("policy: {enabled: false}"));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_FALSE(config->policy.enabled);
  config = ParseProxyConfig(YAML::Load("policy: {enable: false}"));
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.status().message().find("policy.enable"), std::string_view::npos)
      << config.status();
}

TEST(ProxyConfigTest, WorkloadLabelsDefaultToAppAndVersion) {
  absl::StatusOr<ProxyConfig> config =
      ParseProxyConfig(YAML::Load("workload: {name: reviews-v1, app: reviews, version: v1}"));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->workload.labels,
            (std::map<std::string, std::string>{{"app", "reviews"}, {"version", "v1"}}));
  config = ParseProxyConfig(YAML::Load("workload: {name: reviews-v1, app: reviews}"));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->workload.labels, (std::map<std::string, std::string>{{"app", "reviews"}}));
  // Labels in the file replace the defaults.
  config = ParseProxyConfig(
      YAML::Load("workload: {app: reviews, labels: {app: reviews, tier: gold, track: canary}}"));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->workload.labels,
            (std::map<std::string, std::string>{
                {"app", "reviews"}, {"tier", "gold"}, {"track", "canary"}}));
  config = ParseProxyConfig(YAML::Load("workload: {labels: [app]}"));
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().message(), "workload.labels: must be a mapping of strings to strings");
  config = ParseProxyConfig(YAML::Load("workload: {labels: {\"\": x}}"));
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().message(), "workload.labels: a label name is empty");
}

TEST(ProxyConfigTest, IstioJsonLabelsAreThePodLabels) {
  const auto env = [](const char* json) {
    return [json](const char* name) -> const char* {
      return std::string_view(name) == "ISTIO_METAJSON_LABELS" ? json : nullptr;
    };
  };
  WorkloadConfig workload;
  workload.app = "reviews";
  ASSERT_TRUE(
      ApplyDefaultLabels(workload, false,
                         env(R"({"app":"reviews","pod-template-hash":"7d9f","tier":"gold"})"))
          .ok());
  EXPECT_EQ(workload.labels,
            (std::map<std::string, std::string>{
                {"app", "reviews"}, {"pod-template-hash", "7d9f"}, {"tier", "gold"}}));
  // Labels from the file win over the environment.
  WorkloadConfig from_file;
  from_file.labels = {{"app", "mine"}};
  ASSERT_TRUE(ApplyDefaultLabels(from_file, true, env(R"({"app":"reviews"})")).ok());
  EXPECT_EQ(from_file.labels, (std::map<std::string, std::string>{{"app", "mine"}}));
  WorkloadConfig bad;
  absl::Status status = ApplyDefaultLabels(bad, false, env("[1, 2]"));
  EXPECT_EQ(status.message(), "ISTIO_METAJSON_LABELS: not a JSON object");
  status = ApplyDefaultLabels(bad, false, env(R"({"app": {"x": 1}})"));
  EXPECT_EQ(status.message(), "ISTIO_METAJSON_LABELS: label 'app' is not a string");
  status = ApplyDefaultLabels(bad, false, env("{\"app\": "));
  EXPECT_TRUE(std::string(status.message()).starts_with("ISTIO_METAJSON_LABELS: not JSON"))
      << status;
}

TEST(ProxyConfigTest, CaptureRequestHeadersAreLowerCased) {
  absl::StatusOr<ProxyConfig> config =
      ParseProxyConfig(YAML::Load("capture_request_headers: [X-User-Tier, x-tenant]"));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->capture_request_headers, (std::vector<std::string>{"x-user-tier", "x-tenant"}));
  config = ParseProxyConfig(YAML::Load(""));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_TRUE(config->capture_request_headers.empty());
}

TEST(ProxyConfigTest, EachInvalidCaseNamesItsField) {
  const YAML::Node cases = YAML::LoadFile(kTestdata + "invalid_configs.yaml");
  ASSERT_GT(cases.size(), 20u);
  for (const YAML::Node& test_case : cases) {
    const std::string name = test_case["name"].as<std::string>();
    const std::string expected = test_case["error"].as<std::string>();
    absl::StatusOr<ProxyConfig> config = ParseProxyConfig(test_case["config"]);
    ASSERT_FALSE(config.ok()) << name << " was accepted";
    EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument) << name;
    EXPECT_NE(std::string(config.status().message()).find(expected), std::string::npos)
        << name << ": got '" << config.status().message() << "', want '" << expected << "'";
  }
}

}  // namespace
}  // namespace meshtel::proxy
