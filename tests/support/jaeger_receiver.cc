#include "tests/support/jaeger_receiver.h"

#include <chrono>
#include <utility>

#include "fmt/format.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_builder.h"

namespace meshtel::testing {

class JaegerReceiver::Service final : public jaeger::api_v2::CollectorService::Service {
 public:
  grpc::Status PostSpans(grpc::ServerContext* context,
                         const jaeger::api_v2::PostSpansRequest* request,
                         jaeger::api_v2::PostSpansResponse* /*response*/) override {
    JaegerCall call;
    for (const auto& [key, value] : context->client_metadata()) {
      call.metadata.emplace(std::string(key.data(), key.size()),
                            std::string(value.data(), value.size()));
    }
    call.request = *request;
    std::string unavailable;
    call.official_mismatches = CompareWithOfficial(*request, request->SerializeAsString(),
                                                   "jaeger.api_v2.PostSpansRequest", &unavailable);
    call.official_checked = unavailable.empty();
    absl::MutexLock lock(&mutex);
    grpc::Status status = grpc::Status::OK;
    if (ok_first > 0) {
      --ok_first;
    } else {
      status = answer;
    }
    call.answered = status.error_code();
    if (status.ok()) {
      for (ReceivedSpan& span : SpansOf(*request)) spans.push_back(std::move(span));
    }
    calls.push_back(std::move(call));
    return status;
  }

  mutable absl::Mutex mutex;
  grpc::Status answer ABSL_GUARDED_BY(mutex);
  size_t ok_first ABSL_GUARDED_BY(mutex) = 0;
  std::vector<JaegerCall> calls ABSL_GUARDED_BY(mutex);
  std::vector<ReceivedSpan> spans ABSL_GUARDED_BY(mutex);
};

JaegerReceiver::JaegerReceiver() : JaegerReceiver(grpc::InsecureServerCredentials()) {}

JaegerReceiver::JaegerReceiver(std::shared_ptr<grpc::ServerCredentials> credentials)
    : service_(std::make_unique<Service>()) {
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", std::move(credentials), &port_);
  builder.RegisterService(service_.get());
  server_ = builder.BuildAndStart();
}

JaegerReceiver::~JaegerReceiver() {
  if (server_) server_->Shutdown(std::chrono::system_clock::now());
}

std::string JaegerReceiver::endpoint() const { return fmt::format("127.0.0.1:{}", port_); }

void JaegerReceiver::Answer(grpc::Status status, size_t ok_first) {
  absl::MutexLock lock(&service_->mutex);
  service_->answer = std::move(status);
  service_->ok_first = ok_first;
}

std::vector<JaegerCall> JaegerReceiver::Calls() const {
  absl::MutexLock lock(&service_->mutex);
  return service_->calls;
}

std::vector<ReceivedSpan> JaegerReceiver::Spans() const {
  absl::MutexLock lock(&service_->mutex);
  return service_->spans;
}

bool JaegerReceiver::WaitForSpans(size_t count, absl::Duration timeout) const {
  absl::MutexLock lock(&service_->mutex);
  const auto enough = [this, count]() { return service_->spans.size() >= count; };
  return service_->mutex.AwaitWithTimeout(absl::Condition(&enough), timeout);
}

}  // namespace meshtel::testing
