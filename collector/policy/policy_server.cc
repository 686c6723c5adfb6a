#include "collector/policy/policy_server.h"

// Tested by: tests/collector/policy/policy_server_test.cc

#include <algorithm>
#include <deque>
#include <utility>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "collector/logs/json_escape.h"
#include "collector/policy/proxy_policy.h"
#include "fmt/format.h"
#include "grpcpp/grpcpp.h"
#include "spdlog/spdlog.h"

namespace meshtel::collector {
namespace {

using meshtel::v1::PolicyRequest;
using meshtel::v1::PolicyResponse;

// How many (nonce, version) pairs a stream remembers, to name the version an older answer is for.
constexpr size_t kRememberedResponses = 8;

void AppendString(std::string& out, std::string_view text) {
  out += '"';
  AppendJsonEscaped(out, text);
  out += '"';
}

std::string TimeText(int64_t unix_nano) {
  return absl::FormatTime(absl::RFC3339_full, absl::FromUnixNanos(unix_nano), absl::UTCTimeZone());
}

}  // namespace

std::string_view PolicyStateName(PolicyStreamStatus::State state) {
  switch (state) {
    case PolicyStreamStatus::State::kAck:
      return "ACK";
    case PolicyStreamStatus::State::kNack:
      return "NACK";
    case PolicyStreamStatus::State::kPending:
      break;
  }
  return "PENDING";
}

std::string ProxiesJson(const std::vector<PolicyStreamStatus>& streams, uint64_t generation,
                        std::string_view digest) {
  std::string out = fmt::format("{{\"policy\":{{\"generation\":{},\"digest\":", generation);
  AppendString(out, digest);
  out += "},\"proxies\":[";
  for (size_t i = 0; i < streams.size(); ++i) {
    const PolicyStreamStatus& s = streams[i];
    if (i > 0) out += ',';
    out += "{\"instance_id\":";
    AppendString(out, s.instance_id);
    out += ",\"workload\":";
    AppendString(out, s.workload);
    out += ",\"namespace\":";
    AppendString(out, s.namespace_name);
    out += ",\"peer\":";
    AppendString(out, s.peer);
    out += ",\"proxy_version\":";
    AppendString(out, s.proxy_version);
    out += ",\"connected_since\":";
    AppendString(out, TimeText(s.connected_unix_nano));
    out += ",\"version_sent\":";
    AppendString(out, s.version_sent);
    out += ",\"version_acked\":";
    AppendString(out, s.version_acked);
    out += ",\"state\":";
    AppendString(out, PolicyStateName(s.state));
    out += ",\"last_nack\":";
    if (s.nack_unix_nano == 0) {
      out += "null";
    } else {
      out += "{\"version\":";
      AppendString(out, s.nack_version);
      out += ",\"reason\":";
      AppendString(out, s.nack_reason);
      out += ",\"time\":";
      AppendString(out, TimeText(s.nack_unix_nano));
      out += '}';
    }
    out += ",\"applied\":[";
    for (size_t j = 0; j < s.applied.size(); ++j) {
      if (j > 0) out += ',';
      AppendString(out, s.applied[j]);
    }
    out += "]}";
  }
  out += "]}\n";
  return out;
}

// One proxy's stream. Lives from the StreamPolicy call until OnDone(), which deletes it.
// Lock order: the server's registry_mutex_, then mutex_.
class PolicyServer::Stream : public grpc::ServerBidiReactor<PolicyRequest, PolicyResponse> {
 public:
  Stream(PolicyServer& server, grpc::CallbackServerContext* context) : server_(server) {
    status_.peer = context->peer();
    status_.connected_unix_nano = absl::GetCurrentTimeNanos();
    server_.streams_gauge_.Increment();
    if (!server_.Register(this)) {
      FinishWith(grpc::Status(grpc::StatusCode::UNAVAILABLE, "the collector is shutting down"));
      return;
    }
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {  // the proxy closed its side, or the call was cancelled
      FinishWith(grpc::Status::OK);
      return;
    }
    if (Finishing()) return;
    if (!announced_) {
      if (!request_.has_node() || request_.node().instance_id().empty()) {
        spdlog::warn("policy stream from {}: first request without node.instance_id", Peer());
        FinishWith(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                "the first PolicyRequest of a stream must carry node.instance_id"));
        return;
      }
      node_ = request_.node();
      {
        std::lock_guard<std::mutex> lock(mutex_);
        status_.instance_id = node_.instance_id();
        status_.workload = node_.workload();
        status_.namespace_name = node_.namespace_();
        status_.proxy_version = node_.version();
      }
      if (server_.on_node_ != nullptr) {
        PolicyWorkload workload;
        workload.namespace_name = node_.namespace_();
        workload.name = node_.workload();
        workload.labels.insert(node_.labels().begin(), node_.labels().end());
        server_.on_node_(workload);
      }
      spdlog::info("policy stream opened by {} ({}/{}, holding version '{}')", node_.instance_id(),
                   node_.namespace_(), node_.workload(), request_.version_info());
      if (!server_.Announce(this, request_.version_info())) return;
    } else {
      HandleAnswer(request_);
    }
    ReadNext();
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard<std::mutex> lock(mutex_);
    write_in_flight_ = false;
    if (ok && waiting_ && !finish_wanted_) {
      writing_ = std::move(*waiting_);
      waiting_.reset();
      write_in_flight_ = true;
      StartWrite(&writing_);
      return;
    }
    waiting_.reset();
    if (finish_wanted_ && !finished_) {
      finished_ = true;
      Finish(finish_status_);
    }
  }

  void OnDone() override {
    server_.Unregister(this);
    server_.streams_gauge_.Decrement();
    if (announced_) spdlog::info("policy stream of {} ended", node_.instance_id());
    delete this;
  }

  // Ends the stream with `status` once no write is in flight. Idempotent.
  void FinishWith(grpc::Status status) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (finish_wanted_) return;
    finish_wanted_ = true;
    finish_status_ = std::move(status);
    waiting_.reset();
    if (!write_in_flight_) {
      finished_ = true;
      Finish(finish_status_);
    }
  }

  // Makes the stream visible to PolicyChanged() and Streams(), and sends the first response:
  // none when the proxy already holds that version. Registry lock held.
  void Start(meshtel::v1::ProxyPolicy policy, const std::string& held_version) {
    announced_ = true;
    const std::string version = ProxyPolicyVersion(policy);
    if (!held_version.empty() && held_version == version) {
      std::lock_guard<std::mutex> lock(mutex_);
      latest_version_ = version;
      status_.version_sent = version;
      status_.version_acked = version;
      status_.state = PolicyStreamStatus::State::kAck;
      status_.applied.assign(policy.applied().begin(), policy.applied().end());
      return;
    }
    Push(std::move(policy), version);
  }

  // Sends `policy` unless it is the version last sent. Registry lock held.
  void Push(meshtel::v1::ProxyPolicy policy, const std::string& version) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (finish_wanted_ || version == latest_version_) return;
    PolicyResponse response;
    response.set_version_info(version);
    response.set_nonce(server_.NextNonce());
    latest_version_ = version;
    latest_nonce_ = response.nonce();
    sent_.emplace_back(response.nonce(), version);
    if (sent_.size() > kRememberedResponses) sent_.pop_front();
    status_.version_sent = version;
    status_.state = PolicyStreamStatus::State::kPending;
    status_.applied.assign(policy.applied().begin(), policy.applied().end());
    *response.mutable_policy() = std::move(policy);
    server_.pushes_.Increment();
    spdlog::debug("policy: pushing version {} to {}", version, node_.instance_id());
    if (write_in_flight_) {
      waiting_ = std::move(response);
      return;
    }
    writing_ = std::move(response);
    write_in_flight_ = true;
    StartWrite(&writing_);
  }

  bool announced() const { return announced_; }
  // Valid once announced(); never changes after.
  const meshtel::v1::PolicyNode& node() const { return node_; }

  PolicyStreamStatus Status() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return status_;
  }

 private:
  // Starts the next read unless the stream is finishing. Under mutex_, so that FinishWith() comes
  // either before (no read) or after it (Finish with a read outstanding, which ends it).
  void ReadNext() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!finish_wanted_) StartRead(&request_);
  }

  bool Finishing() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return finish_wanted_;
  }

  std::string Peer() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return status_.peer;
  }

  // An ACK or NACK of one of our responses.
  void HandleAnswer(const PolicyRequest& request) {
    if (request.response_nonce().empty()) return;  // answers nothing
    std::lock_guard<std::mutex> lock(mutex_);
    const auto sent = std::find_if(sent_.begin(), sent_.end(), [&](const auto& entry) {
      return entry.first == request.response_nonce();
    });
    const std::string answered = sent != sent_.end() ? sent->second : std::string();
    const bool latest = request.response_nonce() == latest_nonce_;
    status_.version_acked = request.version_info();
    if (request.has_error_detail()) {
      server_.nacks_.Increment();
      status_.nack_version = answered;
      status_.nack_reason = request.error_detail().message();
      status_.nack_unix_nano = absl::GetCurrentTimeNanos();
      if (latest) status_.state = PolicyStreamStatus::State::kNack;
      spdlog::warn("policy: {} ({}/{}) rejected version {}: {}", node_.instance_id(),
                   node_.namespace_(), node_.workload(), answered, status_.nack_reason);
    } else {
      server_.acks_.Increment();
      if (latest) status_.state = PolicyStreamStatus::State::kAck;
      spdlog::debug("policy: {} accepted version {}", node_.instance_id(), request.version_info());
    }
  }

  PolicyServer& server_;
  // Read side: touched only by the read callbacks (one at a time); node_ is set before Start()
  // sets announced_ (under the registry lock), and only read after.
  PolicyRequest request_;
  std::atomic<bool> announced_{false};
  meshtel::v1::PolicyNode node_;

  mutable std::mutex mutex_;  // guards everything below
  PolicyResponse writing_;
  bool write_in_flight_ = false;
  std::optional<PolicyResponse> waiting_;
  std::string latest_version_;
  std::string latest_nonce_;
  std::deque<std::pair<std::string, std::string>> sent_;  // (nonce, version), oldest first
  bool finish_wanted_ = false;
  bool finished_ = false;
  grpc::Status finish_status_;
  PolicyStreamStatus status_;
};

class PolicyServer::Service : public meshtel::v1::PolicyService::CallbackService {
 public:
  explicit Service(PolicyServer& server) : server_(server) {}
  grpc::ServerBidiReactor<PolicyRequest, PolicyResponse>* StreamPolicy(
      grpc::CallbackServerContext* context) override {
    return new Stream(server_, context);
  }

 private:
  PolicyServer& server_;
};

PolicyServer::PolicyServer(Resolver resolve, NodeCallback on_node, prometheus::Registry& registry)
    : resolve_(std::move(resolve)),
      on_node_(std::move(on_node)),
      streams_gauge_(prometheus::BuildGauge()
                         .Name("meshtel_policy_streams")
                         .Help("PolicyService streams open now (one per subscribed proxy).")
                         .Register(registry)
                         .Add({})),
      pushes_(prometheus::BuildCounter()
                  .Name("meshtel_policy_pushes_total")
                  .Help("Policy responses sent to proxies.")
                  .Register(registry)
                  .Add({})),
      acks_(prometheus::BuildCounter()
                .Name("meshtel_policy_acks_total")
                .Help("Policy responses proxies accepted.")
                .Register(registry)
                .Add({})),
      nacks_(prometheus::BuildCounter()
                 .Name("meshtel_policy_nacks_total")
                 .Help("Policy responses proxies rejected (NACK, with a reason).")
                 .Register(registry)
                 .Add({})),
      service_(std::make_unique<Service>(*this)) {}

PolicyServer::~PolicyServer() { Shutdown(); }

grpc::Service& PolicyServer::service() { return *service_; }

bool PolicyServer::Register(Stream* stream) {
  std::lock_guard<std::mutex> lock(registry_mutex_);
  if (stopping_) return false;
  streams_.push_back(stream);
  return true;
}

bool PolicyServer::Announce(Stream* stream, const std::string& held_version) {
  std::lock_guard<std::mutex> lock(registry_mutex_);
  if (stopping_) return false;  // Shutdown() finished the stream already
  stream->Start(resolve_(stream->node()), held_version);
  return true;
}

void PolicyServer::Unregister(Stream* stream) {
  std::lock_guard<std::mutex> lock(registry_mutex_);
  streams_.erase(std::remove(streams_.begin(), streams_.end(), stream), streams_.end());
}

std::string PolicyServer::NextNonce() { return fmt::format("{:x}", next_nonce_.fetch_add(1)); }

void PolicyServer::PolicyChanged() {
  std::lock_guard<std::mutex> lock(registry_mutex_);
  if (stopping_) return;
  for (Stream* stream : streams_) {
    if (!stream->announced()) continue;
    meshtel::v1::ProxyPolicy policy = resolve_(stream->node());
    const std::string version = ProxyPolicyVersion(policy);
    stream->Push(std::move(policy), version);
  }
}

std::vector<PolicyStreamStatus> PolicyServer::Streams() const {
  std::lock_guard<std::mutex> lock(registry_mutex_);
  std::vector<PolicyStreamStatus> out;
  for (const Stream* stream : streams_) {
    if (stream->announced()) out.push_back(stream->Status());
  }
  return out;
}

void PolicyServer::Shutdown() {
  std::lock_guard<std::mutex> lock(registry_mutex_);
  if (stopping_) return;
  stopping_ = true;
  for (Stream* stream : streams_) {
    stream->FinishWith(
        grpc::Status(grpc::StatusCode::UNAVAILABLE, "the collector is shutting down"));
  }
}

}  // namespace meshtel::collector
