#include "collector/config/config_reloader.h"

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <thread>

#include "gtest/gtest.h"
#include "prometheus/text_serializer.h"
#include "tests/support/metrics_text.h"
#include "tests/support/process.h"

namespace meshtel::collector {
namespace {

// A mesh-wide Telemetry resource setting the sampling rate.
std::string Policy(int sampling_percentage) {
  return "apiVersion: telemetry.istio.io/v1\n"
         "kind: Telemetry\n"
         "metadata: {name: mesh-default, namespace: istio-system}\n"
         "spec:\n"
         "  tracing:\n"
         "    - randomSamplingPercentage: " +
         std::to_string(sampling_percentage) + "\n";
}
const std::string kPolicyA = Policy(10);
const std::string kPolicyB = Policy(50);
const std::string kPolicyInvalid = Policy(140);

void WriteReplacing(const std::string& path, const std::string& text) {
  // As editors and ConfigMap updates do: a new file renamed over the old one.
  const std::string temporary = path + ".tmp";
  {
    std::ofstream out(temporary, std::ios::trunc);
    out << text;
  }
  std::filesystem::rename(temporary, path);
}

// Waits (up to 20 s) until `done` holds; returns whether it did.
bool WaitUntil(const std::function<bool()>& done) {
  for (int i = 0; i < 400; ++i) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return done();
}

double SampleSum(prometheus::Registry& registry, const std::string& name,
                 const std::vector<std::string>& fragments) {
  return testing::SumSamples(prometheus::TextSerializer().Serialize(registry.Collect()), name,
                             fragments);
}

std::optional<double> SamplingOf(const PolicySource& source) {
  return source.current()
      ->Resolve({.namespace_name = "shop", .name = "cart"})
      .tracing[0]
      .random_sampling_percentage;
}

class ConfigReloaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir("meshtel-reloader");
    policy_path_ = dir_ + "/policy.yaml";
    config_path_ = dir_ + "/collector.yaml";
  }

  // A reloader over the files as they are now; `config_text` is written first.
  std::unique_ptr<ConfigReloader> Start(const std::string& config_text) {
    WriteReplacing(config_path_, config_text);
    absl::StatusOr<CollectorConfig> config = LoadCollectorConfig(config_path_);
    EXPECT_TRUE(config.ok()) << config.status();
    if (!config->policy.file.empty()) {
      absl::StatusOr<TelemetryPolicy> policy = TelemetryPolicy::Load(config->policy.file);
      EXPECT_TRUE(policy.ok()) << policy.status();
      source_.Replace(std::make_shared<const TelemetryPolicy>(*std::move(policy)));
    }
    auto reloader = std::make_unique<ConfigReloader>(
        ConfigReloaderOptions{
            .config_path = config_path_,
            .load_config = &LoadCollectorConfig,
            .apply_log_level = [this](const std::string& level) { log_levels_.push_back(level); }},
        *config, source_, registry_);
    reloader->Start();
    return reloader;
  }

  std::string dir_, policy_path_, config_path_;
  PolicySource source_;
  prometheus::Registry registry_;
  std::vector<std::string> log_levels_;
};

TEST_F(ConfigReloaderTest, AChangedPolicyFileIsAppliedWithoutASignal) {
  WriteReplacing(policy_path_, kPolicyA);
  auto reloader = Start("policy: {file: \"" + policy_path_ + "\", watch_interval: 100ms}\n");
  ASSERT_EQ(SamplingOf(source_), 10.0);
  const uint64_t generation = source_.generation();

  WriteReplacing(policy_path_, kPolicyB);
  ASSERT_TRUE(WaitUntil([&] {
    return SampleSum(registry_, "meshtel_config_reloads_total",
                     {"file=\"policy\"", "result=\"applied\""}) == 1;
  }));
  EXPECT_EQ(source_.generation(), generation + 1);
  EXPECT_EQ(SamplingOf(source_), 50.0);
  EXPECT_NE(reloader->StatusJson().find("\"policy\":{\"result\":\"applied\""), std::string::npos)
      << reloader->StatusJson();
}

TEST_F(ConfigReloaderTest, AnInvalidPolicyIsRejectedAndThePreviousOneStays) {
  WriteReplacing(policy_path_, kPolicyA);
  auto reloader = Start("policy: {file: \"" + policy_path_ + "\", watch_interval: 100ms}\n");
  const uint64_t generation = source_.generation();

  WriteReplacing(policy_path_, kPolicyInvalid);
  ASSERT_TRUE(WaitUntil([&] {
    return SampleSum(registry_, "meshtel_config_reloads_total",
                     {"file=\"policy\"", "result=\"rejected\""}) == 1;
  }));
  EXPECT_EQ(source_.generation(), generation);
  EXPECT_EQ(SamplingOf(source_), 10.0);
  EXPECT_EQ(SampleSum(registry_, "meshtel_config_last_reload_successful", {"file=\"policy\""}), 0);
  const std::string status = reloader->StatusJson();
  EXPECT_NE(status.find("randomSamplingPercentage: 140 is not in [0,100]"), std::string::npos)
      << status;

  // Fixing the file applies it.
  WriteReplacing(policy_path_, kPolicyB);
  // The counters follow the installed policy: wait for them, the last step of a reload.
  ASSERT_TRUE(WaitUntil([&] {
    return SampleSum(registry_, "meshtel_config_reloads_total",
                     {"file=\"policy\"", "result=\"applied\""}) == 1;
  }));
  EXPECT_EQ(source_.generation(), generation + 1);
  EXPECT_EQ(SamplingOf(source_), 50.0);
  EXPECT_EQ(SampleSum(registry_, "meshtel_config_last_reload_successful", {"file=\"policy\""}), 1);
}

TEST_F(ConfigReloaderTest, ReloadNowOfAnUnchangedFileChangesNothing) {
  WriteReplacing(policy_path_, kPolicyA);
  auto reloader = Start("policy: {file: \"" + policy_path_ + "\", watch_interval: 0s}\n");
  const uint64_t generation = source_.generation();
  reloader->ReloadNow("test");
  EXPECT_EQ(source_.generation(), generation);
  EXPECT_EQ(SampleSum(registry_, "meshtel_config_reloads_total",
                      {"file=\"policy\"", "result=\"unchanged\""}),
            1);
}

TEST_F(ConfigReloaderTest, WithoutWatchingOnlyReloadNowSeesAChange) {
  WriteReplacing(policy_path_, kPolicyA);
  auto reloader = Start("policy: {file: \"" + policy_path_ + "\", watch_interval: 0s}\n");
  const uint64_t generation = source_.generation();
  WriteReplacing(policy_path_, kPolicyB);
  // The watch thread checks nothing with watch_interval 0; give it time to prove it.
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  EXPECT_EQ(source_.generation(), generation);
  reloader->ReloadNow("SIGHUP");
  EXPECT_EQ(source_.generation(), generation + 1);
  EXPECT_EQ(SamplingOf(source_), 50.0);
}

TEST_F(ConfigReloaderTest, ConfigReloadAppliesLogLevelAndPolicyAndNamesWhatNeedsARestart) {
  WriteReplacing(policy_path_, kPolicyA);
  auto reloader = Start("log_level: info\npolicy: {watch_interval: 0s}\n");
  EXPECT_EQ(source_.current()->resource_count(), 0u);

  WriteReplacing(config_path_,
                 "log_level: debug\n"
                 "ingest: {listen: \"127.0.0.1:25140\"}\n"
                 "policy: {file: \"" +
                     policy_path_ + "\", watch_interval: 0s}\n");
  reloader->ReloadNow("SIGHUP");
  EXPECT_EQ(log_levels_, (std::vector<std::string>{"debug"}));
  EXPECT_EQ(source_.current()->resource_count(), 1u);  // the new policy.file was loaded
  EXPECT_EQ(SamplingOf(source_), 10.0);
  EXPECT_EQ(SampleSum(registry_, "meshtel_config_reloads_total",
                      {"file=\"config\"", "result=\"restart_required\""}),
            1);
  EXPECT_NE(reloader->StatusJson().find("changed [ingest] needs a restart"), std::string::npos)
      << reloader->StatusJson();
}

TEST_F(ConfigReloaderTest, AnInvalidConfigIsRejectedWhole) {
  WriteReplacing(policy_path_, kPolicyA);
  auto reloader = Start("log_level: info\npolicy: {watch_interval: 100ms}\n");
  WriteReplacing(config_path_, "log_level: debug\npolicy: {file: \"" + policy_path_ +
                                   "\", watch_interval: 100ms}\nstore: {durability: maybe}\n");
  ASSERT_TRUE(WaitUntil([&] {
    return SampleSum(registry_, "meshtel_config_reloads_total",
                     {"file=\"config\"", "result=\"rejected\""}) == 1;
  }));
  EXPECT_TRUE(log_levels_.empty());
  EXPECT_EQ(source_.current()->resource_count(), 0u);
  EXPECT_NE(reloader->StatusJson().find("store.durability"), std::string::npos)
      << reloader->StatusJson();
  EXPECT_EQ(SampleSum(registry_, "meshtel_config_last_reload_successful", {"file=\"config\""}), 0);
}

}  // namespace
}  // namespace meshtel::collector
