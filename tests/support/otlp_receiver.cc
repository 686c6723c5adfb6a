#include "tests/support/otlp_receiver.h"

#include <chrono>
#include <utility>

#include "fmt/format.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_builder.h"

namespace meshtel::testing {

namespace otlp_collector = opentelemetry::proto::collector::trace::v1;

namespace {
constexpr const char* kOfficialRequestType =
    "opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest";
}  // namespace

class OtlpReceiver::Service final : public otlp_collector::TraceService::Service {
 public:
  grpc::Status Export(grpc::ServerContext* context,
                      const otlp_collector::ExportTraceServiceRequest* request,
                      otlp_collector::ExportTraceServiceResponse* response) override {
    OtlpCall call;
    call.grpc = true;
    for (const auto& [key, value] : context->client_metadata()) {
      call.headers.emplace(std::string(key.data(), key.size()),
                           std::string(value.data(), value.size()));
    }
    call.request = *request;
    std::string unavailable;
    call.official_mismatches = CompareWithOfficial(*request, request->SerializeAsString(),
                                                   kOfficialRequestType, &unavailable);
    call.official_checked = unavailable.empty();
    absl::MutexLock lock(&mutex);
    if (grpc_answer.ok() && partial_success.has_partial_success()) *response = partial_success;
    Record(std::move(call), grpc_answer.ok());
    return grpc_answer;
  }

  void Record(OtlpCall call, bool accepted) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex) {
    call.accepted = accepted;
    if (accepted) {
      for (ReceivedSpan& span : SpansOf(call.request)) spans.push_back(std::move(span));
    }
    calls.push_back(std::move(call));
  }

  mutable absl::Mutex mutex;
  grpc::Status grpc_answer ABSL_GUARDED_BY(mutex);
  TestHttpReply http_answer ABSL_GUARDED_BY(mutex);  // status 0: success (200 + response)
  otlp_collector::ExportTraceServiceResponse partial_success ABSL_GUARDED_BY(mutex);
  std::vector<OtlpCall> calls ABSL_GUARDED_BY(mutex);
  std::vector<ReceivedSpan> spans ABSL_GUARDED_BY(mutex);
};

OtlpReceiver::OtlpReceiver(bool grpc_gzip, const std::optional<TestTlsOptions>& http_tls)
    : service_(std::make_unique<Service>()), http_tls_(http_tls.has_value()) {
  {
    absl::MutexLock lock(&service_->mutex);
    service_->http_answer.status = 0;
  }
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &grpc_port_);
  builder.RegisterService(service_.get());
  if (!grpc_gzip) builder.SetCompressionAlgorithmSupportStatus(GRPC_COMPRESS_GZIP, false);
  server_ = builder.BuildAndStart();
  http_ = std::make_unique<TestHttpServer>(
      [this](const TestHttpRequest& request) { return HandleHttp(request); }, http_tls);
}

OtlpReceiver::~OtlpReceiver() {
  http_.reset();
  if (server_) server_->Shutdown(std::chrono::system_clock::now());
}

std::string OtlpReceiver::grpc_endpoint() const { return fmt::format("127.0.0.1:{}", grpc_port_); }

std::string OtlpReceiver::http_url() const {
  return fmt::format("{}://127.0.0.1:{}/v1/traces", http_tls_ ? "https" : "http", http_->port());
}

void OtlpReceiver::AnswerGrpc(grpc::Status status) {
  absl::MutexLock lock(&service_->mutex);
  service_->grpc_answer = std::move(status);
}

void OtlpReceiver::AnswerHttp(int status, std::vector<std::pair<std::string, std::string>> headers,
                              std::string body) {
  absl::MutexLock lock(&service_->mutex);
  service_->http_answer = TestHttpReply{};
  service_->http_answer.status = status;
  service_->http_answer.headers = std::move(headers);
  service_->http_answer.body = std::move(body);
}

void OtlpReceiver::AnswerPartialSuccess(int64_t rejected_spans, std::string error_message) {
  absl::MutexLock lock(&service_->mutex);
  service_->grpc_answer = grpc::Status::OK;
  service_->http_answer = TestHttpReply{};
  service_->http_answer.status = 0;
  service_->partial_success.mutable_partial_success()->set_rejected_spans(rejected_spans);
  service_->partial_success.mutable_partial_success()->set_error_message(std::move(error_message));
}

std::vector<OtlpCall> OtlpReceiver::Calls() const {
  absl::MutexLock lock(&service_->mutex);
  return service_->calls;
}

std::vector<ReceivedSpan> OtlpReceiver::Spans() const {
  absl::MutexLock lock(&service_->mutex);
  return service_->spans;
}

bool OtlpReceiver::WaitForSpans(size_t count, absl::Duration timeout) const {
  absl::MutexLock lock(&service_->mutex);
  const auto enough = [this, count]() { return service_->spans.size() >= count; };
  return service_->mutex.AwaitWithTimeout(absl::Condition(&enough), timeout);
}

TestHttpReply OtlpReceiver::HandleHttp(const TestHttpRequest& request) {
  OtlpCall call;
  call.target = request.target;
  for (const auto& [name, value] : request.headers) call.headers.emplace(name, value);
  call.body_bytes = request.body.size();
  const auto encoding = request.headers.find("content-encoding");
  if (encoding != request.headers.end()) call.content_encoding = encoding->second;
  std::string serialized = request.body;
  bool decoded = false;
  if (request.method != "POST" || request.target != "/v1/traces") {
    call.decode_error = fmt::format("{} {} is not POST /v1/traces", request.method, request.target);
  } else if (const auto type = request.headers.find("content-type");
             type == request.headers.end() || type->second != "application/x-protobuf") {
    call.decode_error = "Content-Type is not application/x-protobuf";
  } else if (call.content_encoding == "gzip" && !Gunzip(request.body).has_value()) {
    call.decode_error = "the body is not gzip";
  } else {
    if (call.content_encoding == "gzip") serialized = *Gunzip(request.body);
    if (!call.request.ParseFromString(serialized)) {
      call.decode_error = "the body is not an ExportTraceServiceRequest (project subset)";
    } else {
      decoded = true;
      std::string unavailable;
      call.official_mismatches =
          CompareWithOfficial(call.request, serialized, kOfficialRequestType, &unavailable);
      call.official_checked = unavailable.empty();
    }
  }
  absl::MutexLock lock(&service_->mutex);
  TestHttpReply reply = service_->http_answer;
  if (!decoded && reply.status == 0) {
    reply.status = 400;
    reply.body = call.decode_error;
  }
  const bool accepted = reply.status == 0 || (reply.status >= 200 && reply.status < 300);
  if (reply.status == 0) {
    reply.status = 200;
    reply.headers = {{"Content-Type", "application/x-protobuf"}};
    reply.body = service_->partial_success.SerializeAsString();
  }
  service_->Record(std::move(call), accepted && decoded);
  return reply;
}

}  // namespace meshtel::testing
