// Policy distribution end to end: the real collector with a policy file, the demo mesh's two
// proxies subscribed to it, traffic, and meshtelctl status.
//
// Sampling is observed through stored traces: each request carries B3 ids without a sampling
// decision and an x-request-id whose first 8 hex digits are 0x1388 (5000 mod 10000), so a proxy
// samples it exactly when its rate is above 50% (Envoy's rule, trace_context.h). The traces
// pipeline keeps only head-sampled traces here (fast 200 answers, no percentage), so a trace id
// is stored exactly when the deciding proxy sampled it.

#include <signal.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "collector/ingest/json_reader.h"
#include "fmt/format.h"
#include "gtest/gtest.h"
#include "tests/e2e/mesh_fixture.h"
#include "tests/support/http_get.h"
#include "tests/support/metrics_text.h"
#include "tests/support/process.h"

namespace meshtel::e2e {
namespace {

using collector::JsonValue;

constexpr char kRequestId[] = "00001388-0000-4000-8000-0000000000";  // + 2 hex digits

// Mesh-wide 1% (Istio's default), explicitly.
constexpr char kMeshOnePercent[] = R"(apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: mesh-default, namespace: istio-system}
spec:
  tracing:
    - randomSamplingPercentage: 1
)";

// The backend workload (app=backend in namespace demo) at 100%.
constexpr char kBackendAll[] = R"(---
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: backend, namespace: demo}
spec:
  selector: {matchLabels: {app: backend}}
  tracing:
    - randomSamplingPercentage: 100
)";

// The backend at 0% with 40 header custom tags: valid for the collector, more captured headers
// than a proxy takes (32).
std::string BackendTooManyHeaders() {
  std::string text = R"(---
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: backend, namespace: demo}
spec:
  selector: {matchLabels: {app: backend}}
  tracing:
    - randomSamplingPercentage: 0
      customTags:
)";
  for (int i = 0; i < 40; ++i) {
    text += fmt::format("        h{:02}: {{header: {{name: x-h-{:02}}}}}\n", i, i);
  }
  return text;
}

std::string Member(const JsonValue& object, std::string_view name) {
  for (const auto& member : object.members) {
    if (member.first == name) return member.second.text;
  }
  return "";
}

const JsonValue* Find(const JsonValue& object, std::string_view name) {
  for (const auto& member : object.members) {
    if (member.first == name) return &member.second;
  }
  return nullptr;
}

struct ProxyState {
  std::string instance_id;
  std::string state;
  std::string version_sent;
  std::string version_acked;
  std::string nack_reason;
};

class PolicyDistributionTest : public MeshTest {
 protected:
  std::string ExtraCollectorConfig() const override {
    testing::WriteFile(PolicyPath(), initial_policy_);
    // Traces are decided 300 ms after their last span; only head-sampled ones are kept.
    return "policy: {file: \"" + PolicyPath() +
           "\"}\n"
           "traces:\n  assembly: {idle_timeout: 300ms, max_wait: 5s}\n"
           "  sampling: {keep_errors: false, latency_threshold: 0s}\n";
  }

  std::string PolicyPath() const { return dir_ + "/policy.yaml"; }

  // Replaces the policy file and tells the collector (SIGHUP).
  void ReplacePolicy(const std::string& text) {
    testing::WriteFile(PolicyPath() + ".new", text);
    ASSERT_EQ(std::rename((PolicyPath() + ".new").c_str(), PolicyPath().c_str()), 0);
    ASSERT_EQ(kill(collector_->pid(), SIGHUP), 0);
  }

  // The state of the policy stream of `workload`'s proxy, from GET /api/proxies.
  std::optional<ProxyState> Proxy(const std::string& workload) {
    const testing::HttpResult result = testing::HttpGet(admin_port_, "/api/proxies");
    if (result.status != 200) return std::nullopt;
    absl::StatusOr<JsonValue> json = collector::ParseJson(result.body);
    if (!json.ok()) {
      ADD_FAILURE() << json.status() << ": " << result.body;
      return std::nullopt;
    }
    const JsonValue* proxies = Find(*json, "proxies");
    if (proxies == nullptr) return std::nullopt;
    for (const JsonValue& proxy : proxies->items) {
      if (Member(proxy, "workload") != workload) continue;
      ProxyState state{.instance_id = Member(proxy, "instance_id"),
                       .state = Member(proxy, "state"),
                       .version_sent = Member(proxy, "version_sent"),
                       .version_acked = Member(proxy, "version_acked")};
      if (const JsonValue* nack = Find(proxy, "last_nack"); nack != nullptr && nack->is_object()) {
        state.nack_reason = Member(*nack, "reason");
      }
      return state;
    }
    return std::nullopt;
  }

  // Waits until `workload`'s proxy is in `state` and `check` holds; returns that state.
  ProxyState WaitForProxy(const std::string& workload, const std::string& state,
                          const std::function<bool(const ProxyState&)>& check = nullptr) {
    std::optional<ProxyState> last;
    const bool reached = testing::WaitFor(
        [&] {
          last = Proxy(workload);
          return last && last->state == state && (check == nullptr || check(*last));
        },
        seconds(30));
    EXPECT_TRUE(reached) << workload << " never reached " << state << ": "
                         << testing::HttpGet(admin_port_, "/api/proxies").body;
    return last.value_or(ProxyState{});
  }

  // The policy version a proxy says it applies (meshtel_proxy_policy_info{version}).
  std::string AppliedVersion(uint16_t proxy_admin_port) {
    const std::string text = testing::HttpGet(proxy_admin_port, "/stats/prometheus").body;
    const std::vector<std::string> lines =
        testing::SampleLines(text, "meshtel_proxy_policy_info", {});
    if (lines.size() != 1) return "<none>";
    const size_t at = lines[0].find("version=\"");
    if (at == std::string::npos) return "<none>";
    return lines[0].substr(at + 9, lines[0].find('"', at + 9) - at - 9);
  }

  double ProxyMetric(uint16_t proxy_admin_port, const std::string& name) {
    return testing::SumSamples(testing::HttpGet(proxy_admin_port, "/stats/prometheus").body, name,
                               {});
  }

  // Sends one request with trace id `n` (32 hex digits) to `port` (a proxy's inbound listener).
  void SendTraced(uint16_t port, const std::string& host, int n) {
    const testing::HttpResult result =
        testing::HttpGet(port, "/",
                         {{"Host", host},
                          {"x-b3-traceid", TraceId(n)},
                          {"x-b3-spanid", fmt::format("{:016x}", 0x5000 + n)},
                          {"x-request-id", fmt::format("{}{:02x}", kRequestId, n)}});
    ASSERT_EQ(result.status, 200) << result.error << result.body;
  }

  static std::string TraceId(int n) { return fmt::format("{:032x}", 0xa11ce000 + n); }

  bool TraceStored(int n) {
    return testing::HttpGet(admin_port_, "/api/traces/" + TraceId(n)).status == 200;
  }

  // Traces the collector decided on (kept or dropped).
  double TracesDecided() {
    return testing::SumSamples(Metrics(), "meshtel_traces_sampled_total", {});
  }

  void WaitForDecided(double count) {
    ASSERT_TRUE(testing::WaitFor([&] { return TracesDecided() >= count; }, seconds(30)))
        << "decided " << TracesDecided() << " of " << count;
  }

  int Ctl(const std::string& arguments, std::string* output) {
    return testing::RunCommand(std::string(MESHTELCTL_BIN) + " " + arguments, output);
  }

  std::string initial_policy_ = kMeshOnePercent;
};

TEST_F(PolicyDistributionTest, RaisingOneWorkloadsSamplingSamplesItsTracesOnly) {
  const ProxyState backend_before = WaitForProxy("backend", "ACK");
  const ProxyState frontend_before = WaitForProxy("frontend", "ACK");
  EXPECT_EQ(AppliedVersion(backend_admin_port_), backend_before.version_acked);

  // At 1% neither entry samples these requests.
  SendTraced(backend_inbound_port_, "backend.demo", 1);
  SendTraced(frontend_inbound_port_, "frontend.demo", 2);
  WaitForDecided(2);
  EXPECT_FALSE(TraceStored(1));
  EXPECT_FALSE(TraceStored(2));

  ReplacePolicy(std::string(kMeshOnePercent) + kBackendAll);
  const ProxyState backend_after = WaitForProxy("backend", "ACK", [&](const ProxyState& state) {
    return state.version_acked != backend_before.version_acked;
  });
  EXPECT_EQ(AppliedVersion(backend_admin_port_), backend_after.version_acked);

  // The backend now samples what reaches it first; the frontend still decides at 1% for the
  // requests entering through it (the backend keeps that decision).
  SendTraced(backend_inbound_port_, "backend.demo", 3);
  SendTraced(frontend_inbound_port_, "frontend.demo", 4);
  EXPECT_TRUE(testing::WaitFor([&] { return TraceStored(3); }, seconds(30)))
      << "the backend's trace was never stored";
  WaitForDecided(4);
  EXPECT_FALSE(TraceStored(4));
  // The frontend's policy did not change: nothing was pushed to it.
  const std::optional<ProxyState> frontend_after = Proxy("frontend");
  ASSERT_TRUE(frontend_after.has_value());
  EXPECT_EQ(frontend_after->version_sent, frontend_before.version_sent);
  EXPECT_EQ(AppliedVersion(frontend_admin_port_), frontend_before.version_acked);

  std::string output;
  EXPECT_EQ(Ctl("status --admin 127.0.0.1:" + std::to_string(admin_port_), &output), 0) << output;
  EXPECT_NE(output.find(backend_after.instance_id), std::string::npos) << output;
  EXPECT_NE(output.find("ACK"), std::string::npos) << output;
}

TEST_F(PolicyDistributionTest, APolicyAProxyCannotTakeIsNackedAndTheOldOneStays) {
  const ProxyState before = WaitForProxy("backend", "ACK");

  ReplacePolicy(std::string(kMeshOnePercent) + kBackendAll);
  const ProxyState all = WaitForProxy("backend", "ACK", [&](const ProxyState& state) {
    return state.version_acked != before.version_acked;
  });

  ReplacePolicy(std::string(kMeshOnePercent) + BackendTooManyHeaders());
  const ProxyState nacked = WaitForProxy("backend", "NACK");
  EXPECT_EQ(nacked.version_acked, all.version_acked);
  EXPECT_NE(nacked.version_sent, all.version_acked);
  EXPECT_EQ(nacked.nack_reason,
            "capture_request_headers: 40 headers, 40 with the proxy's own, are more than 32");
  EXPECT_EQ(ProxyMetric(backend_admin_port_, "meshtel_proxy_policy_responses_total"), 3);
  EXPECT_EQ(testing::SumSamples(testing::HttpGet(backend_admin_port_, "/stats/prometheus").body,
                                "meshtel_proxy_policy_responses_total", {"result=\"nack\""}),
            1);

  // The old policy (100%, not the refused 0%) is still in force.
  EXPECT_EQ(AppliedVersion(backend_admin_port_), all.version_acked);
  SendTraced(backend_inbound_port_, "backend.demo", 5);
  EXPECT_TRUE(testing::WaitFor([&] { return TraceStored(5); }, seconds(30)))
      << "the backend stopped sampling at 100%";

  std::string output;
  const std::string admin = " --admin 127.0.0.1:" + std::to_string(admin_port_);
  EXPECT_EQ(Ctl("status" + admin, &output), 1) << output;
  EXPECT_NE(output.find("NACK"), std::string::npos) << output;
  EXPECT_NE(output.find("are more than 32"), std::string::npos) << output;
  EXPECT_NE(output.find(nacked.instance_id), std::string::npos) << output;
  EXPECT_EQ(Ctl("status --json" + admin, &output), 1) << output;
  absl::StatusOr<JsonValue> json = collector::ParseJson(output);
  ASSERT_TRUE(json.ok()) << json.status() << output;
  EXPECT_NE(Find(*json, "proxies"), nullptr);
  EXPECT_NE(Find(*json, "exporters"), nullptr);
  EXPECT_NE(output.find("\"state\":\"NACK\""), std::string::npos) << output;
  EXPECT_EQ(Ctl("status --admin 127.0.0.1:" + std::to_string(testing::FreePort()), &output), 3)
      << output;
  EXPECT_EQ(Ctl("status --bogus", &output), 2) << output;
}

TEST_F(PolicyDistributionTest, ProxiesKeepTheirPolicyWhileTheCollectorRestartsAndResubscribe) {
  const ProxyState before = WaitForProxy("backend", "ACK");
  ReplacePolicy(std::string(kMeshOnePercent) + kBackendAll);
  const ProxyState all = WaitForProxy("backend", "ACK", [&](const ProxyState& state) {
    return state.version_acked != before.version_acked;
  });
  const ProxyState frontend = WaitForProxy("frontend", "ACK");

  ASSERT_EQ(collector_->Terminate(), 0);
  ASSERT_TRUE(testing::WaitFor(
      [&] { return ProxyMetric(backend_admin_port_, "meshtel_proxy_policy_connected") == 0; },
      seconds(30)));
  EXPECT_EQ(AppliedVersion(backend_admin_port_), all.version_acked);
  // Sampled under the kept policy while the collector is away; the proxy resends the records.
  SendTraced(backend_inbound_port_, "backend.demo", 6);

  StartCollector();
  const ProxyState back = WaitForProxy("backend", "ACK", [&](const ProxyState& state) {
    return state.version_acked == all.version_acked;
  });
  EXPECT_EQ(back.instance_id, all.instance_id);
  WaitForProxy("frontend", "ACK", [&](const ProxyState& state) {
    return state.version_acked == frontend.version_acked;
  });
  // Both resubscribed holding the version the new collector resolves: nothing had to be sent.
  EXPECT_EQ(testing::SumSamples(Metrics(), "meshtel_policy_pushes_total", {}), 0);
  EXPECT_EQ(testing::SumSamples(Metrics(), "meshtel_policy_streams", {}), 2);
  EXPECT_TRUE(testing::WaitFor([&] { return TraceStored(6); }, seconds(30)))
      << "the request sent while the collector was down was not sampled";
}

}  // namespace
}  // namespace meshtel::e2e
