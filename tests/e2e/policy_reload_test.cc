// End-to-end: meshtel-collector follows its policy and config files while it runs — on a change
// of the file and on SIGHUP — keeps the running policy when a new file is invalid, and refuses
// to start with an invalid policy file.

#include <signal.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "tests/support/http_get.h"
#include "tests/support/metrics_text.h"
#include "tests/support/process.h"

namespace meshtel::e2e {
namespace {

using std::chrono::seconds;

std::string Policy(int sampling_percentage) {
  return "apiVersion: telemetry.istio.io/v1\n"
         "kind: Telemetry\n"
         "metadata: {name: mesh-default, namespace: istio-system}\n"
         "spec:\n"
         "  tracing:\n"
         "    - randomSamplingPercentage: " +
         std::to_string(sampling_percentage) + "\n";
}

// Replaces `path` as editors and ConfigMap updates do: a new file renamed over the old one.
void Replace(const std::string& path, const std::string& text) {
  testing::WriteFile(path + ".tmp", text);
  std::filesystem::rename(path + ".tmp", path);
}

class PolicyReloadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir("meshtel-policy-reload");
    admin_port_ = testing::FreePort();
    policy_path_ = dir_ + "/policy.yaml";
    config_path_ = dir_ + "/collector.yaml";
  }

  std::string Config(const std::string& log_level, const std::string& watch_interval,
                     uint16_t ingest_port) const {
    return "log_level: " + log_level + "\n" +
           "ingest: {listen: \"127.0.0.1:" + std::to_string(ingest_port) + "\"}\n" +
           "admin: {listen: \"127.0.0.1:" + std::to_string(admin_port_) + "\"}\n" +
           "store: {data_dir: \"" + dir_ + "/data\"}\n" + "shutdown_grace: 1s\n" +
           "policy: {file: \"" + policy_path_ + "\", watch_interval: " + watch_interval + "}\n";
  }

  std::string PolicyStatus() const { return testing::HttpGet(admin_port_, "/api/policy").body; }
  std::string Metrics() const { return testing::HttpGet(admin_port_, "/metrics").body; }
  double Reloads(const std::string& file, const std::string& result) const {
    return testing::SumSamples(Metrics(), "meshtel_config_reloads_total",
                               {"file=\"" + file + "\"", "result=\"" + result + "\""});
  }

  std::string dir_, policy_path_, config_path_;
  uint16_t admin_port_ = 0;
  std::unique_ptr<testing::ChildProcess> collector_;
};

TEST_F(PolicyReloadTest, AChangedPolicyFileIsFollowedAndAnInvalidOneRejected) {
  Replace(policy_path_, Policy(1));
  testing::WriteFile(config_path_, Config("info", "200ms", testing::FreePort()));
  ASSERT_TRUE(
      testing::StartCollector(config_path_, dir_ + "/collector.log", admin_port_, collector_));
  const std::string initial = PolicyStatus();
  EXPECT_NE(initial.find("\"policy_generation\":2"), std::string::npos) << initial;
  EXPECT_NE(initial.find("\"resources\":1"), std::string::npos) << initial;

  // A valid change is applied without a signal.
  Replace(policy_path_, Policy(100));
  // The counter is the last step of a reload.
  ASSERT_TRUE(testing::WaitFor([&] { return Reloads("policy", "applied") == 1; }, seconds(20)))
      << Metrics() << collector_->Log();
  EXPECT_NE(PolicyStatus().find("\"policy_generation\":3"), std::string::npos) << PolicyStatus();

  // An invalid one is rejected, named, and the policy in force stays.
  Replace(policy_path_, Policy(140));
  ASSERT_TRUE(testing::WaitFor([&] { return Reloads("policy", "rejected") == 1; }, seconds(20)))
      << Metrics();
  const std::string rejected = PolicyStatus();
  EXPECT_NE(rejected.find("\"policy_generation\":3"), std::string::npos) << rejected;
  EXPECT_NE(rejected.find("spec.tracing[0].randomSamplingPercentage: 140 is not in [0,100]"),
            std::string::npos)
      << rejected;
  EXPECT_EQ(
      testing::SumSamples(Metrics(), "meshtel_config_last_reload_successful", {"file=\"policy\""}),
      0);
  EXPECT_NE(collector_->Log().find("policy reload (policy file changed) rejected"),
            std::string::npos)
      << collector_->Log();
  EXPECT_TRUE(collector_->Running());
}

TEST_F(PolicyReloadTest, SighupReloadsTheConfigAndNamesWhatNeedsARestart) {
  Replace(policy_path_, Policy(1));
  const uint16_t ingest_port = testing::FreePort();
  testing::WriteFile(config_path_, Config("info", "0s", ingest_port));
  ASSERT_TRUE(
      testing::StartCollector(config_path_, dir_ + "/collector.log", admin_port_, collector_));

  // Without watching, a change waits for SIGHUP.
  Replace(policy_path_, Policy(50));
  Replace(config_path_, Config("debug", "0s", testing::FreePort()));
  ASSERT_EQ(::kill(collector_->pid(), SIGHUP), 0);
  // The config is reloaded before the policy; the policy's counter comes last.
  ASSERT_TRUE(testing::WaitFor([&] { return Reloads("policy", "applied") == 1; }, seconds(20)))
      << Metrics() << collector_->Log();
  EXPECT_NE(PolicyStatus().find("\"policy_generation\":3"), std::string::npos) << PolicyStatus();
  EXPECT_EQ(Reloads("config", "restart_required"), 1) << Metrics();
  const std::string log = collector_->Log();
  EXPECT_NE(log.find("changed [ingest] needs a restart"), std::string::npos) << log;
  // The ingest port did not move.
  EXPECT_TRUE(testing::CanConnect(ingest_port));
  EXPECT_TRUE(collector_->Running());
}

TEST_F(PolicyReloadTest, AnInvalidPolicyFileFailsTheStartNamingTheField) {
  Replace(policy_path_, Policy(140));
  testing::WriteFile(config_path_, Config("info", "1s", testing::FreePort()));
  std::unique_ptr<testing::ChildProcess> collector = testing::ChildProcess::Start(
      {MESHTEL_COLLECTOR_BIN, "--config", config_path_}, dir_ + "/collector.log");
  const int exit_code = collector->Wait(std::chrono::seconds(20));
  EXPECT_NE(exit_code, 0);
  const std::string log = collector->Log();
  EXPECT_NE(log.find("cannot start: INVALID_ARGUMENT: policy.file: " + policy_path_ +
                     ": document 1 (Telemetry istio-system/mesh-default): "
                     "spec.tracing[0].randomSamplingPercentage: 140 is not in [0,100]"),
            std::string::npos)
      << log;
}

}  // namespace
}  // namespace meshtel::e2e
