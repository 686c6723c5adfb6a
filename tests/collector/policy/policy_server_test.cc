#include "collector/policy/policy_server.h"

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "collector/ingest/grpc_listener.h"
#include "collector/policy/proxy_policy.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "meshtel/v1/policy.grpc.pb.h"
#include "prometheus/text_serializer.h"
#include "tests/support/metrics_text.h"
#include "tests/support/process.h"

namespace meshtel::collector {
namespace {

using meshtel::v1::PolicyRequest;
using meshtel::v1::PolicyResponse;
using meshtel::v1::ProxyPolicy;
using Stream = grpc::ClientReaderWriter<PolicyRequest, PolicyResponse>;

class PolicyServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SetSampling("reviews", 1);
    server_ = std::make_unique<PolicyServer>(
        [this](const meshtel::v1::PolicyNode& node) {
          std::lock_guard<std::mutex> lock(mutex_);
          ++resolved_;
          ProxyPolicy policy;
          policy.mutable_outbound()->set_report(true);
          policy.mutable_inbound()->set_report(true);
          if (node.workload() == "reviews") {
            policy.mutable_outbound()->set_random_sampling_percentage(reviews_sampling_);
          }
          policy.add_applied("shop/" + node.workload());
          return policy;
        },
        [this](const PolicyWorkload& workload) {
          std::lock_guard<std::mutex> lock(mutex_);
          nodes_.push_back(workload);
        },
        registry_);
    auto listener = StartGrpcListener(common::HostPort{"127.0.0.1", 0}, server_->service(), 1 << 20,
                                      "ingest.listen", "policy test");
    ASSERT_TRUE(listener.ok()) << listener.status();
    grpc_server_ = std::move(listener->server);
    channel_ = grpc::CreateChannel("127.0.0.1:" + std::to_string(listener->port),
                                   grpc::InsecureChannelCredentials());
    stub_ = meshtel::v1::PolicyService::NewStub(channel_);
  }

  void TearDown() override {
    server_->Shutdown();
    grpc_server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
    grpc_server_.reset();
    server_.reset();
  }

  void SetSampling(const std::string& workload, double percent) {
    ASSERT_EQ(workload, "reviews");
    std::lock_guard<std::mutex> lock(mutex_);
    reviews_sampling_ = percent;
  }

  // The policy the test resolver gives `workload`, and its version.
  ProxyPolicy PolicyFor(const std::string& workload) {
    meshtel::v1::PolicyNode node;
    node.set_workload(workload);
    ProxyPolicy policy;
    policy.mutable_outbound()->set_report(true);
    policy.mutable_inbound()->set_report(true);
    std::lock_guard<std::mutex> lock(mutex_);
    if (workload == "reviews") {
      policy.mutable_outbound()->set_random_sampling_percentage(reviews_sampling_);
    }
    policy.add_applied("shop/" + workload);
    return policy;
  }

  static PolicyRequest First(const std::string& instance, const std::string& workload,
                             const std::string& held_version = "") {
    PolicyRequest request;
    request.mutable_node()->set_instance_id(instance);
    request.mutable_node()->set_workload(workload);
    request.mutable_node()->set_namespace_("shop");
    (*request.mutable_node()->mutable_labels())["app"] = workload;
    request.mutable_node()->set_version("test");
    request.set_version_info(held_version);
    return request;
  }

  static PolicyRequest Ack(const PolicyResponse& response) {
    PolicyRequest request;
    request.set_version_info(response.version_info());
    request.set_response_nonce(response.nonce());
    return request;
  }

  static PolicyRequest Nack(const PolicyResponse& response, const std::string& held,
                            const std::string& reason) {
    PolicyRequest request;
    request.set_version_info(held);
    request.set_response_nonce(response.nonce());
    request.mutable_error_detail()->set_code(static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT));
    request.mutable_error_detail()->set_message(reason);
    return request;
  }

  std::unique_ptr<Stream> Open(grpc::ClientContext& context) {
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    return stub_->StreamPolicy(&context);
  }

  // Waits until the stream of `instance` is listed in `state`.
  bool WaitForState(const std::string& instance, PolicyStreamStatus::State state) {
    return testing::WaitFor(
        [&] {
          for (const PolicyStreamStatus& status : server_->Streams()) {
            if (status.instance_id == instance && status.state == state) return true;
          }
          return false;
        },
        std::chrono::seconds(10));
  }

  PolicyStreamStatus StatusOf(const std::string& instance) {
    for (const PolicyStreamStatus& status : server_->Streams()) {
      if (status.instance_id == instance) return status;
    }
    ADD_FAILURE() << "no stream of " << instance;
    return {};
  }

  double Metric(const std::string& name) {
    return testing::SumSamples(prometheus::TextSerializer().Serialize(registry_.Collect()), name,
                               {});
  }

  std::mutex mutex_;
  double reviews_sampling_ = 1;
  int resolved_ = 0;
  std::vector<PolicyWorkload> nodes_;
  prometheus::Registry registry_;
  std::unique_ptr<PolicyServer> server_;
  std::unique_ptr<grpc::Server> grpc_server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<meshtel::v1::PolicyService::Stub> stub_;
};

TEST_F(PolicyServerTest, AnswersTheFirstRequestWithTheResolvedPolicyAndRecordsTheAck) {
  grpc::ClientContext context;
  auto stream = Open(context);
  ASSERT_TRUE(stream->Write(First("proxy-1", "reviews")));
  PolicyResponse response;
  ASSERT_TRUE(stream->Read(&response));
  EXPECT_EQ(response.version_info(), ProxyPolicyVersion(PolicyFor("reviews")));
  EXPECT_FALSE(response.nonce().empty());
  EXPECT_EQ(response.policy().outbound().random_sampling_percentage(), 1);
  EXPECT_EQ(response.policy().applied(0), "shop/reviews");
  EXPECT_EQ(StatusOf("proxy-1").state, PolicyStreamStatus::State::kPending);

  ASSERT_TRUE(stream->Write(Ack(response)));
  ASSERT_TRUE(WaitForState("proxy-1", PolicyStreamStatus::State::kAck));
  const PolicyStreamStatus status = StatusOf("proxy-1");
  EXPECT_EQ(status.workload, "reviews");
  EXPECT_EQ(status.namespace_name, "shop");
  EXPECT_EQ(status.proxy_version, "test");
  EXPECT_EQ(status.version_sent, response.version_info());
  EXPECT_EQ(status.version_acked, response.version_info());
  EXPECT_EQ(status.nack_unix_nano, 0);
  EXPECT_GT(status.connected_unix_nano, 0);
  EXPECT_EQ(Metric("meshtel_policy_streams"), 1);
  EXPECT_EQ(Metric("meshtel_policy_pushes_total"), 1);
  EXPECT_EQ(Metric("meshtel_policy_acks_total"), 1);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ASSERT_EQ(nodes_.size(), 1u);
    EXPECT_EQ(nodes_[0].namespace_name, "shop");
    EXPECT_EQ(nodes_[0].name, "reviews");
    EXPECT_EQ(nodes_[0].labels.at("app"), "reviews");
  }
  const std::string json = ProxiesJson(server_->Streams(), 3, "abc");
  EXPECT_NE(json.find("\"policy\":{\"generation\":3,\"digest\":\"abc\"}"), std::string::npos)
      << json;
  EXPECT_NE(json.find("\"instance_id\":\"proxy-1\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"state\":\"ACK\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"last_nack\":null"), std::string::npos) << json;

  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
  EXPECT_TRUE(
      testing::WaitFor([&] { return server_->Streams().empty(); }, std::chrono::seconds(10)));
  EXPECT_TRUE(testing::WaitFor([&] { return Metric("meshtel_policy_streams") == 0; },
                               std::chrono::seconds(10)));
}

TEST_F(PolicyServerTest, RecordsANackWithItsReason) {
  grpc::ClientContext context;
  auto stream = Open(context);
  ASSERT_TRUE(stream->Write(First("proxy-1", "reviews")));
  PolicyResponse response;
  ASSERT_TRUE(stream->Read(&response));
  ASSERT_TRUE(stream->Write(Nack(response, "", "capture headers: 40 are more than 32")));
  ASSERT_TRUE(WaitForState("proxy-1", PolicyStreamStatus::State::kNack));
  const PolicyStreamStatus status = StatusOf("proxy-1");
  EXPECT_EQ(status.nack_version, response.version_info());
  EXPECT_EQ(status.nack_reason, "capture headers: 40 are more than 32");
  EXPECT_GT(status.nack_unix_nano, 0);
  EXPECT_EQ(status.version_acked, "");
  EXPECT_EQ(Metric("meshtel_policy_nacks_total"), 1);
  const std::string json = ProxiesJson(server_->Streams(), 1, "");
  EXPECT_NE(json.find("\"state\":\"NACK\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"reason\":\"capture headers: 40 are more than 32\""), std::string::npos)
      << json;
  context.TryCancel();
}

TEST_F(PolicyServerTest, PushesOnPolicyChangedAndNeverResendsAnEqualVersion) {
  grpc::ClientContext context;
  auto stream = Open(context);
  ASSERT_TRUE(stream->Write(First("proxy-1", "reviews")));
  PolicyResponse first;
  ASSERT_TRUE(stream->Read(&first));
  ASSERT_TRUE(stream->Write(Ack(first)));
  ASSERT_TRUE(WaitForState("proxy-1", PolicyStreamStatus::State::kAck));

  server_->PolicyChanged();  // resolves to the same policy: nothing is sent
  SetSampling("reviews", 100);
  server_->PolicyChanged();
  PolicyResponse second;
  ASSERT_TRUE(stream->Read(&second));  // the stream is ordered: the first push is this one
  EXPECT_EQ(second.policy().outbound().random_sampling_percentage(), 100);
  EXPECT_NE(second.version_info(), first.version_info());
  EXPECT_NE(second.nonce(), first.nonce());
  EXPECT_EQ(StatusOf("proxy-1").state, PolicyStreamStatus::State::kPending);
  EXPECT_EQ(Metric("meshtel_policy_pushes_total"), 2);
  ASSERT_TRUE(stream->Write(Ack(second)));
  ASSERT_TRUE(WaitForState("proxy-1", PolicyStreamStatus::State::kAck));
  EXPECT_EQ(StatusOf("proxy-1").version_acked, second.version_info());
  context.TryCancel();
}

TEST_F(PolicyServerTest, PushesOnlyToStreamsWhosePolicyChanged) {
  grpc::ClientContext reviews_context;
  auto reviews = Open(reviews_context);
  grpc::ClientContext ratings_context;
  auto ratings = Open(ratings_context);
  ASSERT_TRUE(reviews->Write(First("proxy-r", "reviews")));
  ASSERT_TRUE(ratings->Write(First("proxy-x", "ratings")));
  PolicyResponse response;
  ASSERT_TRUE(reviews->Read(&response));
  ASSERT_TRUE(ratings->Read(&response));
  SetSampling("reviews", 50);
  server_->PolicyChanged();
  ASSERT_TRUE(reviews->Read(&response));
  EXPECT_EQ(response.policy().outbound().random_sampling_percentage(), 50);
  EXPECT_EQ(Metric("meshtel_policy_pushes_total"), 3);
  EXPECT_EQ(StatusOf("proxy-x").version_sent, ProxyPolicyVersion(PolicyFor("ratings")));
  reviews_context.TryCancel();
  ratings_context.TryCancel();
}

TEST_F(PolicyServerTest, AProxyHoldingTheCurrentVersionGetsNoResponseUntilItChanges) {
  const std::string held = ProxyPolicyVersion(PolicyFor("reviews"));
  grpc::ClientContext context;
  auto stream = Open(context);
  ASSERT_TRUE(stream->Write(First("proxy-1", "reviews", held)));
  ASSERT_TRUE(WaitForState("proxy-1", PolicyStreamStatus::State::kAck));
  EXPECT_EQ(StatusOf("proxy-1").version_acked, held);
  EXPECT_EQ(Metric("meshtel_policy_pushes_total"), 0);
  SetSampling("reviews", 100);
  server_->PolicyChanged();
  PolicyResponse response;
  ASSERT_TRUE(stream->Read(&response));  // nothing was sent before this push
  EXPECT_EQ(response.policy().outbound().random_sampling_percentage(), 100);
  context.TryCancel();
}

TEST_F(PolicyServerTest, AFirstRequestWithoutInstanceIdEndsTheStreamWithInvalidArgument) {
  grpc::ClientContext context;
  auto stream = Open(context);
  PolicyRequest request;
  request.mutable_node()->set_workload("reviews");
  ASSERT_TRUE(stream->Write(request));
  PolicyResponse response;
  EXPECT_FALSE(stream->Read(&response));
  const grpc::Status status = stream->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(),
            "the first PolicyRequest of a stream must carry node.instance_id");
  EXPECT_TRUE(server_->Streams().empty());

  grpc::ClientContext no_node_context;
  auto no_node = Open(no_node_context);
  ASSERT_TRUE(no_node->Write(PolicyRequest()));
  EXPECT_FALSE(no_node->Read(&response));
  EXPECT_EQ(no_node->Finish().error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(PolicyServerTest, ShutdownEndsEveryStreamWithUnavailable) {
  grpc::ClientContext context;
  auto stream = Open(context);
  ASSERT_TRUE(stream->Write(First("proxy-1", "reviews")));
  PolicyResponse response;
  ASSERT_TRUE(stream->Read(&response));
  server_->Shutdown();
  EXPECT_FALSE(stream->Read(&response));
  const grpc::Status status = stream->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();

  grpc::ClientContext late_context;
  auto late = Open(late_context);
  late->Write(First("proxy-2", "reviews"));
  EXPECT_FALSE(late->Read(&response));
  EXPECT_EQ(late->Finish().error_code(), grpc::StatusCode::UNAVAILABLE);
}

}  // namespace
}  // namespace meshtel::collector
