// End to end: the telemetry policy enforced on the collector, keyed by the workload identity the
// records carry. The real binaries on 127.0.0.1 (mesh_fixture.h): frontend (namespace demo) calls
// backend (namespace store), each behind a meshtel-proxy; the collector reads a policy file
// (policy.file) that
//   - disables every metric for namespace store (its records stop counting, frontend's go on),
//   - adds the label user_tier from the request header x-user-tier to frontend's
//     istio_requests_total (a workload selector),
//   - keeps only 5xx access-log lines of frontend (a filter), while backend's 2xx lines still
//     reach the Loki test receiver.

#include <cstdio>
#include <set>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/e2e/mesh_fixture.h"
#include "tests/support/http_get.h"
#include "tests/support/loki_receiver.h"
#include "tests/support/metrics_text.h"
#include "tests/support/process.h"

namespace meshtel::e2e {
namespace {

constexpr char kPolicy[] = R"(apiVersion: meshtel.io/v1
kind: MeshConfig
spec:
  rootNamespace: istio-system
---
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: no-metrics, namespace: store}
spec:
  metrics:
    - overrides:
        - disabled: true
---
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: frontend, namespace: demo}
spec:
  selector: {matchLabels: {app: frontend}}
  metrics:
    - overrides:
        - match: {metric: REQUEST_COUNT}
          tagOverrides:
            user_tier: {value: "request.headers['x-user-tier']"}
  accessLogging:
    - filter: {expression: "response.code >= 500"}
      logFormat: {text: "frontend %RESPONSE_CODE% %REQ(:PATH)%\n"}
)";

class PolicyEnforcementTest : public MeshTest {
 protected:
  void SetUp() override {
    policy_dir_ = testing::MakeTempDir("meshtel-policy");
    testing::WriteFile(policy_dir_ + "/policy.yaml", kPolicy);
    MeshTest::SetUp();
  }
  std::string BackendNamespace() const override { return "store"; }
  std::string ExtraCollectorConfig() const override {
    return "policy: {file: \"" + policy_dir_ +
           "/policy.yaml\"}\n"
           "exporters:\n"
           "  - name: loki\n"
           "    type: loki\n"
           "    batch: {max_wait: 100ms}\n"
           "    loki: {url: \"" +
           loki_.url() + "\", timeout: 2s}\n";
  }
  std::string ExtraProxyConfig() const override {
    return "capture_request_headers: [X-User-Tier]\n";
  }

  // Sends `count` requests for `path` to the frontend's sidecar, with `tier` as x-user-tier
  // unless empty; every answer must be `status`.
  void Send(int count, const std::string& path, const std::string& tier, int status) {
    for (int i = 0; i < count; ++i) {
      std::vector<std::pair<std::string, std::string>> headers = {{"Host", "frontend.demo"}};
      if (!tier.empty()) headers.emplace_back("x-user-tier", tier);
      const testing::HttpResult result = testing::HttpGet(frontend_inbound_port_, path, headers);
      ASSERT_EQ(result.status, status) << result.error << result.body;
    }
  }

  // Every line Loki received, with its stream labels in front: "<labels> <line>".
  std::vector<std::string> LokiLines() const {
    std::vector<std::string> lines;
    for (const testing::LokiPush& push : loki_.Pushes()) {
      for (const auto& stream : push.request.streams()) {
        for (const auto& entry : stream.entries()) {
          lines.push_back(stream.labels() + " " + entry.line());
        }
      }
    }
    return lines;
  }

  // Lines of the backend's own (inbound) proxy.
  size_t BackendLines() const {
    size_t count = 0;
    for (const std::string& line : LokiLines()) {
      count += line.find("reporter=\"destination\", workload=\"backend\"") != std::string::npos;
    }
    return count;
  }

  std::string policy_dir_;
  testing::LokiReceiver loki_;
};

TEST_F(PolicyEnforcementTest, ANamespaceWithMetricsDisabledStopsCountingOthersGoOn) {
  Send(6, "/items", "gold", 200);
  // The frontend's two sides (demo) are counted; the backend (store) is not.
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        return testing::SumSamples(Metrics(), "istio_requests_total", {"reporter=\"source\""}) ==
                   6 &&
               testing::SumSamples(
                   Metrics(), "istio_requests_total",
                   {"reporter=\"destination\"", "destination_workload=\"frontend\""}) == 6;
      },
      seconds(30)))
      << Metrics();
  // The backend's own records are stored (its access-log lines reach Loki) but not counted.
  ASSERT_TRUE(testing::WaitFor([&] { return BackendLines() == 6; }, seconds(30))) << BackendLines();
  const std::string metrics = Metrics();
  EXPECT_TRUE(testing::SampleLines(metrics, "istio_requests_total",
                                   {"destination_workload=\"backend\"", "reporter=\"destination\""})
                  .empty())
      << metrics;
  EXPECT_TRUE(
      testing::SampleLines(metrics, "istio_request_duration_milliseconds_count",
                           {"reporter=\"destination\"", "destination_workload_namespace=\"store\""})
          .empty())
      << metrics;
  // The frontend's outbound side (a demo workload calling into store) still counts.
  EXPECT_EQ(testing::SumSamples(metrics, "istio_requests_total",
                                {"reporter=\"source\"", "destination_workload=\"backend\""}),
            6);
}

TEST_F(PolicyEnforcementTest, ATagOverrideAddsALabelFromAHeaderForOneWorkload) {
  Send(4, "/items", "gold", 200);
  Send(2, "/items", "", 200);
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        return testing::SumSamples(
                   Metrics(), "istio_requests_total",
                   {"reporter=\"destination\"", "destination_workload=\"frontend\""}) == 6;
      },
      seconds(30)))
      << Metrics();
  const std::string metrics = Metrics();
  const std::vector<std::string> frontend = {"reporter=\"destination\"",
                                             "destination_workload=\"frontend\""};
  auto with = [&](const std::string& fragment) {
    std::vector<std::string> fragments = frontend;
    fragments.push_back(fragment);
    return testing::SumSamples(metrics, "istio_requests_total", fragments);
  };
  EXPECT_EQ(with("user_tier=\"gold\""), 4) << metrics;
  EXPECT_EQ(with("user_tier=\"unknown\""), 2) << metrics;
  // Only istio_requests_total of the frontend carries it.
  EXPECT_TRUE(
      testing::SampleLines(metrics, "istio_request_duration_milliseconds_count", {"user_tier="})
          .empty());
  // One # TYPE line per family, whatever the workloads' label plans.
  size_t type_lines = 0;
  for (size_t at = metrics.find("# TYPE istio_requests_total "); at != std::string::npos;
       at = metrics.find("# TYPE istio_requests_total ", at + 1)) {
    ++type_lines;
  }
  EXPECT_EQ(type_lines, 1u);
}

TEST_F(PolicyEnforcementTest, AnAccessLogFilterKeepsOnlyServerErrorsForOneWorkload) {
  Send(5, "/items", "", 200);
  Send(3, "/fail", "", 503);
  // Backend: every line (5 × 200, 3 × 503), Istio's default format. Frontend: only the 503s of
  // both its sides (3 inbound + 3 outbound), in its own format.
  ASSERT_TRUE(testing::WaitFor([&] { return BackendLines() == 8; }, seconds(30))) << BackendLines();
  // The frontend's lines come from the same batches as the backend's; give the exporter its
  // last batch.
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        size_t frontend = 0;
        for (const std::string& line : LokiLines()) {
          frontend += line.find("frontend 503 /fail") != std::string::npos;
        }
        return frontend == 6;
      },
      seconds(30)));
  size_t backend_ok = 0;
  size_t frontend_lines = 0;
  for (const std::string& line : LokiLines()) {
    if (line.find("reporter=\"destination\", workload=\"backend\"") != std::string::npos &&
        line.find("\"GET /items HTTP/1.1\" 200") != std::string::npos) {
      ++backend_ok;
    }
    if (line.find("} frontend ") != std::string::npos) {
      ++frontend_lines;
      EXPECT_NE(line.find("frontend 503 /fail"), std::string::npos) << line;
    }
  }
  EXPECT_EQ(backend_ok, 5u);
  EXPECT_EQ(frontend_lines, 6u);
  // The filtered-out lines are counted as filtered, not lost (the counts follow the push the
  // receiver already has).
  std::string metrics;
  EXPECT_TRUE(testing::WaitFor(
      [&] {
        metrics = Metrics();
        return testing::SumSamples(metrics, "meshtel_exporter_records_total",
                                   {"exporter=\"loki\"", "outcome=\"filtered\""}) >= 10;
      },
      seconds(30)))
      << metrics;
}

// A policy change reaches enforcement: once the reloaded policy drops frontend's filter, its 2xx
// lines are delivered too.
TEST_F(PolicyEnforcementTest, AReloadedPolicyChangesWhatIsEnforced) {
  Send(2, "/items", "", 200);
  ASSERT_TRUE(testing::WaitFor([&] { return BackendLines() == 2; }, seconds(30))) << BackendLines();
  for (const std::string& line : LokiLines()) {
    EXPECT_EQ(line.find("workload=\"frontend\""), std::string::npos) << line;
  }
  std::string policy = kPolicy;
  policy.erase(policy.find("  accessLogging:"));
  testing::WriteFile(policy_dir_ + "/policy.yaml.next", policy);
  ASSERT_EQ(std::rename((policy_dir_ + "/policy.yaml.next").c_str(),
                        (policy_dir_ + "/policy.yaml").c_str()),
            0);
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        return testing::HttpGet(admin_port_, "/api/policy").body.find("\"policy_generation\":3") !=
               std::string::npos;
      },
      seconds(20)))
      << testing::HttpGet(admin_port_, "/api/policy").body;
  Send(3, "/items", "", 200);
  // The frontend's inbound 2xx lines now arrive, in the collector's (Istio's default) format.
  const auto frontend_inbound = [&] {
    size_t count = 0;
    for (const std::string& line : LokiLines()) {
      count += line.find("reporter=\"destination\", workload=\"frontend\"") != std::string::npos &&
               line.find("\"GET /items HTTP/1.1\" 200") != std::string::npos;
    }
    return count;
  };
  ASSERT_TRUE(testing::WaitFor([&] { return frontend_inbound() == 3; }, seconds(30)))
      << frontend_inbound();
}

}  // namespace
}  // namespace meshtel::e2e
