// PolicySubscriber against the collector's real PolicyServer on 127.0.0.1.

#include "proxy/policy/policy_subscriber.h"

#include <chrono>
#include <memory>
#include <mutex>
#include <string>

#include "collector/ingest/grpc_listener.h"
#include "collector/policy/policy_server.h"
#include "collector/policy/proxy_policy.h"
#include "fmt/format.h"
#include "gtest/gtest.h"
#include "prometheus/registry.h"
#include "prometheus/text_serializer.h"
#include "tests/support/metrics_text.h"
#include "tests/support/process.h"

namespace meshtel::proxy {
namespace {

using collector::PolicyServer;
using collector::PolicyStreamStatus;
using std::chrono::seconds;

// A collector's policy endpoint: PolicyServer on its own gRPC server, answering every node with
// the policy set by Set().
class TestCollector {
 public:
  explicit TestCollector(uint16_t port) {
    server_ = std::make_unique<PolicyServer>(
        [this](const meshtel::v1::PolicyNode&) {
          std::lock_guard<std::mutex> lock(mutex_);
          return policy_;
        },
        nullptr, registry_);
    auto listener =
        collector::StartGrpcListener(common::HostPort{"127.0.0.1", port}, server_->service(),
                                     1 << 20, "ingest.listen", "policy test");
    EXPECT_TRUE(listener.ok()) << listener.status();
    if (listener.ok()) grpc_server_ = std::move(listener->server);
  }
  ~TestCollector() { Stop(); }

  void Stop() {
    if (grpc_server_ == nullptr) return;
    server_->Shutdown();
    grpc_server_->Shutdown(std::chrono::system_clock::now() + seconds(5));
    grpc_server_.reset();
  }

  void Set(meshtel::v1::ProxyPolicy policy) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      policy_ = std::move(policy);
    }
    server_->PolicyChanged();
  }

  // The state of the one proxy's stream, or nullopt when none is open.
  std::optional<PolicyStreamStatus> Proxy() const {
    const auto streams = server_->Streams();
    if (streams.size() != 1) return std::nullopt;
    return streams[0];
  }

  bool WaitForState(PolicyStreamStatus::State state, const std::string& acked) const {
    return testing::WaitFor(
        [&] {
          const auto proxy = Proxy();
          return proxy && proxy->state == state && proxy->version_acked == acked;
        },
        seconds(20));
  }

  double Pushes() {
    return testing::SumSamples(prometheus::TextSerializer().Serialize(registry_.Collect()),
                               "meshtel_policy_pushes_total", {});
  }

 private:
  std::mutex mutex_;
  meshtel::v1::ProxyPolicy policy_;
  prometheus::Registry registry_;
  std::unique_ptr<PolicyServer> server_;
  std::unique_ptr<grpc::Server> grpc_server_;
};

meshtel::v1::ProxyPolicy Sampling(double percent) {
  meshtel::v1::ProxyPolicy policy;
  policy.mutable_outbound()->set_random_sampling_percentage(percent);
  policy.mutable_outbound()->set_report(true);
  policy.mutable_inbound()->set_report(true);
  return policy;
}

// A policy this proxy must refuse: 40 captured headers.
meshtel::v1::ProxyPolicy TooManyHeaders() {
  meshtel::v1::ProxyPolicy policy = Sampling(50);
  for (int i = 0; i < 40; ++i) policy.add_capture_request_headers(fmt::format("x-h-{:02}", i));
  return policy;
}

class PolicySubscriberTest : public ::testing::Test {
 protected:
  void SetUp() override {
    port_ = testing::FreePort();
    config_.workload.name = "reviews";
    config_.workload.namespace_name = "shop";
    config_.workload.labels = {{"app", "reviews"}, {"version", "v1"}};
    config_.tracing.random_sampling_percentage = 1;
    config_.reporter.collectors = {common::HostPort{"127.0.0.1", port_}};
    config_.reporter.reconnect_initial_backoff = absl::Milliseconds(50);
    config_.reporter.reconnect_max_backoff = absl::Milliseconds(200);
  }

  void Subscribe() {
    holder_ = std::make_unique<PolicyHolder>(DefaultPolicy(config_));
    subscriber_ = std::make_unique<PolicySubscriber>(config_, "proxy-1", *holder_);
  }

  void TearDown() override {
    if (subscriber_ != nullptr) subscriber_->Stop();
  }

  uint16_t port_ = 0;
  ProxyConfig config_;
  std::unique_ptr<PolicyHolder> holder_;
  std::unique_ptr<PolicySubscriber> subscriber_;
};

TEST_F(PolicySubscriberTest, InstallsAndAcksEachValidPolicy) {
  TestCollector collector(port_);
  collector.Set(Sampling(100));
  Subscribe();
  const std::string v1 = collector::ProxyPolicyVersion(Sampling(100));
  ASSERT_TRUE(collector.WaitForState(PolicyStreamStatus::State::kAck, v1));
  EXPECT_EQ(holder_->current()->version, v1);
  EXPECT_EQ(holder_->current()->outbound.sampling_percentage, 100);
  EXPECT_EQ(holder_->current()->inbound.sampling_percentage, 1);  // unset: the config's
  EXPECT_EQ(subscriber_->version(), v1);
  EXPECT_EQ(collector.Proxy()->workload, "reviews");
  EXPECT_EQ(collector.Proxy()->namespace_name, "shop");

  collector.Set(Sampling(20));
  const std::string v2 = collector::ProxyPolicyVersion(Sampling(20));
  ASSERT_TRUE(collector.WaitForState(PolicyStreamStatus::State::kAck, v2));
  EXPECT_EQ(holder_->current()->outbound.sampling_percentage, 20);
  EXPECT_EQ(subscriber_->acks(), 2u);
  EXPECT_EQ(subscriber_->nacks(), 0u);
}

TEST_F(PolicySubscriberTest, NacksAnInvalidPolicyWithTheReasonAndKeepsTheLastGoodOne) {
  TestCollector collector(port_);
  collector.Set(Sampling(100));
  Subscribe();
  const std::string good = collector::ProxyPolicyVersion(Sampling(100));
  ASSERT_TRUE(collector.WaitForState(PolicyStreamStatus::State::kAck, good));

  collector.Set(TooManyHeaders());
  ASSERT_TRUE(collector.WaitForState(PolicyStreamStatus::State::kNack, good));
  const PolicyStreamStatus proxy = *collector.Proxy();
  EXPECT_EQ(proxy.nack_version, collector::ProxyPolicyVersion(TooManyHeaders()));
  EXPECT_EQ(proxy.nack_reason,
            "capture_request_headers: 40 headers, 40 with the proxy's own, are more than 32");
  EXPECT_EQ(subscriber_->last_nack_reason(), proxy.nack_reason);
  EXPECT_EQ(subscriber_->nacks(), 1u);
  // The last good policy stays in force.
  EXPECT_EQ(holder_->current()->version, good);
  EXPECT_EQ(holder_->current()->outbound.sampling_percentage, 100);
  EXPECT_TRUE(holder_->current()->capture_request_headers.empty());

  // A valid policy after the bad one is taken again.
  collector.Set(Sampling(30));
  ASSERT_TRUE(collector.WaitForState(PolicyStreamStatus::State::kAck,
                                     collector::ProxyPolicyVersion(Sampling(30))));
  EXPECT_EQ(holder_->current()->outbound.sampling_percentage, 30);
}

TEST_F(PolicySubscriberTest, KeepsThePolicyWhileTheCollectorIsDownAndResubscribesWithItsVersion) {
  const std::string version = collector::ProxyPolicyVersion(Sampling(100));
  {
    TestCollector collector(port_);
    collector.Set(Sampling(100));
    Subscribe();
    ASSERT_TRUE(collector.WaitForState(PolicyStreamStatus::State::kAck, version));
  }  // the collector goes away
  ASSERT_TRUE(testing::WaitFor([&] { return !subscriber_->connected(); }, seconds(20)));
  EXPECT_EQ(holder_->current()->version, version);
  EXPECT_EQ(holder_->current()->outbound.sampling_percentage, 100);
  const uint64_t opened = subscriber_->streams_opened();

  // A new collector on the same address resolving to the same policy: the proxy resubscribes
  // holding that version, so nothing needs to be sent.
  TestCollector restarted(port_);
  restarted.Set(Sampling(100));
  ASSERT_TRUE(restarted.WaitForState(PolicyStreamStatus::State::kAck, version));
  EXPECT_GT(subscriber_->streams_opened(), opened);
  EXPECT_EQ(restarted.Pushes(), 0);
  EXPECT_EQ(holder_->current()->version, version);
  // And it still takes changes.
  restarted.Set(Sampling(7));
  ASSERT_TRUE(restarted.WaitForState(PolicyStreamStatus::State::kAck,
                                     collector::ProxyPolicyVersion(Sampling(7))));
  EXPECT_EQ(holder_->current()->outbound.sampling_percentage, 7);
}

TEST_F(PolicySubscriberTest, TriesTheNextCollectorWhenTheFirstIsDown) {
  const uint16_t down = testing::FreePort();
  config_.reporter.collectors = {common::HostPort{"127.0.0.1", down},
                                 common::HostPort{"127.0.0.1", port_}};
  TestCollector collector(port_);
  collector.Set(Sampling(100));
  Subscribe();
  ASSERT_TRUE(collector.WaitForState(PolicyStreamStatus::State::kAck,
                                     collector::ProxyPolicyVersion(Sampling(100))));
  EXPECT_EQ(holder_->current()->outbound.sampling_percentage, 100);
}

}  // namespace
}  // namespace meshtel::proxy
