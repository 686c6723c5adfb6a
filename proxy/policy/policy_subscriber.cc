#include "proxy/policy/policy_subscriber.h"

// Tested by: tests/proxy/policy/policy_subscriber_test.cc

#include <chrono>
#include <cstdlib>
#include <utility>

#include "spdlog/spdlog.h"

namespace meshtel::proxy {

PolicySubscriber::PolicySubscriber(const ProxyConfig& config, std::string instance_id,
                                   PolicyHolder& holder, std::function<bool(size_t)> live,
                                   std::function<const char*(const char*)> getenv)
    : config_(config),
      instance_id_(std::move(instance_id)),
      holder_(holder),
      live_(std::move(live)),
      getenv_(getenv != nullptr ? std::move(getenv) : [](const char* name) -> const char* {
        return std::getenv(name);
      }),
      channels_(config.reporter.collectors.size()) {
  thread_ = std::thread([this] { Loop(); });
}

PolicySubscriber::~PolicySubscriber() { Stop(); }

void PolicySubscriber::Stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
    if (active_context_ != nullptr) active_context_->TryCancel();
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::string PolicySubscriber::version() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return version_;
}

std::string PolicySubscriber::last_nack_reason() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return last_nack_reason_;
}

bool PolicySubscriber::SleepUnlessStopping(absl::Duration delay) {
  std::unique_lock<std::mutex> lock(mutex_);
  return !wake_.wait_for(lock, absl::ToChronoMicroseconds(delay), [this] { return stopping_; });
}

size_t PolicySubscriber::Choose(size_t failed, bool first_attempt) const {
  const size_t count = config_.reporter.collectors.size();
  if (live_ != nullptr) {
    for (size_t i = 0; i < count; ++i) {
      if (live_(i)) return i;
    }
  }
  return first_attempt ? 0 : (failed + 1) % count;
}

void PolicySubscriber::Loop() {
  const ReporterConfig& reporter = config_.reporter;
  absl::Duration backoff = reporter.reconnect_initial_backoff;
  size_t index = 0;
  bool first_attempt = true;
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (stopping_) return;
    }
    index = Choose(index, first_attempt);
    first_attempt = false;
    if (channels_[index] == nullptr) {
      grpc::ChannelArguments arguments;
      arguments.SetInt(
          GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS,
          static_cast<int>(absl::ToInt64Milliseconds(reporter.reconnect_initial_backoff)));
      arguments.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS,
                       static_cast<int>(absl::ToInt64Milliseconds(reporter.reconnect_max_backoff)));
      channels_[index] = grpc::CreateCustomChannel(reporter.collectors[index].ToString(),
                                                   grpc::InsecureChannelCredentials(), arguments);
    }
    const std::shared_ptr<grpc::Channel>& channel = channels_[index];
    // Wait for the channel in short steps so that Stop() is never held up.
    const auto connect_deadline =
        std::chrono::system_clock::now() + absl::ToChronoMicroseconds(backoff);
    bool ready = false;
    while (std::chrono::system_clock::now() < connect_deadline) {
      {
        std::lock_guard<std::mutex> lock(mutex_);
        if (stopping_) return;
      }
      if (channel->WaitForConnected(std::chrono::system_clock::now() +
                                    std::chrono::milliseconds(50))) {
        ready = true;
        break;
      }
    }
    if (!ready) {
      backoff = std::min(backoff * 2, reporter.reconnect_max_backoff);
      continue;
    }
    auto stub = meshtel::v1::PolicyService::NewStub(channel);
    grpc::ClientContext context;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (stopping_) return;
      active_context_ = &context;
    }
    const bool answered = Serve(context, *stub);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      active_context_ = nullptr;
      if (stopping_) return;
    }
    if (answered) backoff = reporter.reconnect_initial_backoff;
    if (!SleepUnlessStopping(backoff)) return;
    backoff = std::min(backoff * 2, reporter.reconnect_max_backoff);
  }
}

bool PolicySubscriber::Serve(grpc::ClientContext& context, meshtel::v1::PolicyService::Stub& stub) {
  std::unique_ptr<grpc::ClientReaderWriter<meshtel::v1::PolicyRequest, meshtel::v1::PolicyResponse>>
      stream = stub.StreamPolicy(&context);
  meshtel::v1::PolicyRequest request;
  meshtel::v1::PolicyNode& node = *request.mutable_node();
  node.set_instance_id(instance_id_);
  node.set_workload(config_.workload.name);
  node.set_namespace_(config_.workload.namespace_name);
  node.mutable_labels()->insert(config_.workload.labels.begin(), config_.workload.labels.end());
  node.set_version(MESHTEL_VERSION);
  request.set_version_info(version());
  bool answered = false;
  if (stream->Write(request)) {
    streams_opened_.fetch_add(1);
    connected_.store(true);
    spdlog::info("policy stream open (holding version '{}')", request.version_info());
    meshtel::v1::PolicyResponse response;
    while (stream->Read(&response)) {
      answered = true;
      request.Clear();
      request.set_response_nonce(response.nonce());
      const absl::Status valid = ValidateProxyPolicy(response.policy(), config_);
      if (valid.ok()) {
        holder_.Install(
            CompilePolicy(response.policy(), response.version_info(), config_, getenv_));
        {
          std::lock_guard<std::mutex> lock(mutex_);
          version_ = response.version_info();
        }
        acks_.fetch_add(1, std::memory_order_relaxed);
        request.set_version_info(response.version_info());
        spdlog::info("policy version {} in force (applied: {} resources)", response.version_info(),
                     response.policy().applied_size());
      } else {
        const std::string reason(valid.message());
        {
          std::lock_guard<std::mutex> lock(mutex_);
          last_nack_reason_ = reason;
          request.set_version_info(version_);
        }
        nacks_.fetch_add(1, std::memory_order_relaxed);
        request.mutable_error_detail()->set_code(
            static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT));
        request.mutable_error_detail()->set_message(reason);
        spdlog::warn("policy version {} rejected, keeping version '{}': {}",
                     response.version_info(), request.version_info(), reason);
      }
      if (!stream->Write(request)) break;
    }
  }
  connected_.store(false);
  const grpc::Status status = stream->Finish();
  bool stopping = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping = stopping_;
  }
  if (!stopping) {
    spdlog::warn("policy stream ended: code {} {}; the policy in force stays",
                 static_cast<int>(status.error_code()), status.error_message());
  }
  return answered;
}

}  // namespace meshtel::proxy
