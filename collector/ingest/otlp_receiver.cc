#include "collector/ingest/otlp_receiver.h"

// Tested by: tests/collector/ingest/otlp_receiver_test.cc

#include <algorithm>
#include <array>
#include <atomic>
#include <limits>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "boost/asio.hpp"
#include "boost/beast.hpp"
#include "collector/common/gzip.h"
#include "collector/common/http_connection.h"
#include "collector/ingest/grpc_listener.h"
#include "collector/ingest/otlp_convert.h"
#include "collector/ingest/otlp_span_transcoder.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/impl/rpc_service_method.h"
#include "grpcpp/support/method_handler.h"
#include "prometheus/counter.h"
#include "spdlog/spdlog.h"

namespace meshtel::collector {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using otlp::Encoding;
using otlp::Signal;

constexpr char kTraceExportMethod[] = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
constexpr char kLogsExportMethod[] = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";
// What a client is asked to wait before retrying after the store refused a request.
constexpr int64_t kRetryAfterSeconds = 2;
constexpr auto kHttpIdleTimeout = std::chrono::seconds(60);
constexpr int kHttpIoThreads = 2;

// Signals as counter label values; kNone for requests whose path named none.
enum SignalIndex { kTraces = 0, kLogs = 1, kNone = 2, kSignalCount = 3 };
enum Transport { kGrpc = 0, kHttp = 1, kTransportCount = 2 };
enum class Result {
  kOk,
  kPartial,
  kInvalid,
  kTooLarge,
  kUnsupportedMediaType,
  kUnavailable,
  kNotFound,
  kMethodNotAllowed,
  kBadHttp,
  kCount
};
constexpr size_t kResultCount = static_cast<size_t>(Result::kCount);

const char* SignalLabel(int signal) {
  static constexpr const char* kNames[] = {"traces", "logs", "none"};
  return kNames[signal];
}
const char* TransportLabel(int transport) { return transport == kGrpc ? "grpc" : "http"; }
const char* ResultLabel(Result result) {
  static constexpr const char* kNames[] = {"ok",
                                           "partial",
                                           "invalid",
                                           "too_large",
                                           "unsupported_media_type",
                                           "unavailable",
                                           "not_found",
                                           "method_not_allowed",
                                           "bad_http"};
  return kNames[static_cast<size_t>(result)];
}
int IndexOf(Signal signal) { return signal == Signal::kTraces ? kTraces : kLogs; }

struct OtlpMetrics {
  explicit OtlpMetrics(prometheus::Registry& registry) {
    auto& requests = prometheus::BuildCounter()
                         .Name("meshtel_otlp_requests_total")
                         .Help("OTLP export requests received, by signal, transport and outcome.")
                         .Register(registry);
    auto& items = prometheus::BuildCounter()
                      .Name("meshtel_otlp_items_total")
                      .Help(
                          "Spans and log records received over OTLP: accepted (stored) or "
                          "rejected as invalid (partial success).")
                      .Register(registry);
    for (int signal = 0; signal < kSignalCount; ++signal) {
      for (int transport = 0; transport < kTransportCount; ++transport) {
        for (size_t result = 0; result < kResultCount; ++result) {
          request_counters[signal][transport][result] =
              &requests.Add({{"signal", SignalLabel(signal)},
                             {"transport", TransportLabel(transport)},
                             {"result", ResultLabel(static_cast<Result>(result))}});
        }
        if (signal == kNone) continue;
        accepted[signal][transport] = &items.Add({{"signal", SignalLabel(signal)},
                                                  {"transport", TransportLabel(transport)},
                                                  {"result", "accepted"}});
        rejected[signal][transport] = &items.Add({{"signal", SignalLabel(signal)},
                                                  {"transport", TransportLabel(transport)},
                                                  {"result", "rejected"}});
      }
    }
  }

  prometheus::Counter* request_counters[kSignalCount][kTransportCount][kResultCount] = {};
  prometheus::Counter* accepted[2][kTransportCount] = {};
  prometheus::Counter* rejected[2][kTransportCount] = {};
};

// Warn-level logging of failures, at most once per 10 s per (signal, transport, result), with
// the number of lines left out since the last one.
class FailureLog {
 public:
  void Warn(int signal, int transport, Result result, std::string_view peer,
            std::string_view message) {
    uint64_t suppressed = 0;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      Slot& slot = slots_[signal][transport][static_cast<size_t>(result)];
      const absl::Time now = absl::Now();
      if (now - slot.last < absl::Seconds(10)) {
        ++slot.suppressed;
        return;
      }
      slot.last = now;
      suppressed = slot.suppressed;
      slot.suppressed = 0;
    }
    spdlog::warn(
        "otlp {} {} from {}: {}: {}{}", SignalLabel(signal), TransportLabel(transport), peer,
        ResultLabel(result), message,
        suppressed == 0 ? std::string() : absl::StrCat(" (", suppressed, " similar not logged)"));
  }

 private:
  struct Slot {
    absl::Time last = absl::InfinitePast();
    uint64_t suppressed = 0;
  };
  std::mutex mutex_;
  Slot slots_[kSignalCount][kTransportCount][kResultCount];
};

// What to answer to one request.
struct Outcome {
  Result result = Result::kOk;
  grpc::StatusCode grpc_code = grpc::StatusCode::OK;
  unsigned http_status = 200;
  // The Export*ServiceResponse on success; the google.rpc.Status otherwise.
  std::string body;
  std::string message;  // on failure
  bool retry = false;   // UNAVAILABLE / 503: ask the client to retry later
};

}  // namespace

// A thread keeps its transcoding buffer for the next request up to this size.
constexpr size_t kKeptTranscodeBytes = 4 << 20;

// The part both transports share: limits, decoding, conversion, Store(), counting, logging.
class OtlpCore {
 public:
  OtlpCore(uint64_t max_request_bytes, ReceivedRecordSink& sink, prometheus::Registry& registry)
      : max_request_bytes_(max_request_bytes), sink_(sink), metrics_(registry) {}

  uint64_t max_request_bytes() const { return max_request_bytes_; }

  // `body` is decompressed.
  Outcome Export(Signal signal, int transport, Encoding encoding, std::string_view body,
                 std::string_view peer) {
    const int index = IndexOf(signal);
    if (body.size() > max_request_bytes_) {
      return Refuse(
          index, transport, encoding, Result::kTooLarge, peer,
          absl::StrCat("request of ", body.size(), " bytes is over ingest.otlp.max_request_bytes (",
                       max_request_bytes_, ")"));
    }
    // Protobuf trace requests go straight to stored bytes when the transcoder vouches for them;
    // everything else (and what it leaves to us) is decoded and converted as messages. The
    // buffers are per thread and kept for the next request, unless a large one grew them.
    thread_local otlp::EncodedRecords encoded;
    thread_local std::vector<std::string_view> views;
    if (signal == Signal::kTraces && encoding == Encoding::kProtobuf &&
        otlp::TranscodeTraceRequest(body, encoded)) {
      views.clear();
      for (size_t i = 0; i < encoded.size(); ++i) views.push_back(encoded.record(i));
      const absl::Status stored =
          views.empty() ? absl::OkStatus() : sink_.StoreEncoded(std::span(views));
      Outcome outcome = Answer(signal, transport, encoding, peer, stored, views.size(),
                               encoded.rejected, encoded.message);
      if (encoded.bytes.capacity() > kKeptTranscodeBytes) {
        encoded = otlp::EncodedRecords();
        views = std::vector<std::string_view>();
      }
      return outcome;
    }
    otlp::Converted converted;
    const uint64_t now = static_cast<uint64_t>(absl::ToUnixNanos(absl::Now()));
    if (absl::Status decoded = otlp::DecodeAndConvert(signal, encoding, body, now, converted);
        !decoded.ok()) {
      return Refuse(index, transport, encoding, Result::kInvalid, peer,
                    std::string(decoded.message()));
    }
    absl::Status stored =
        converted.records.empty() ? absl::OkStatus() : sink_.Store(converted.records);
    return Answer(signal, transport, encoding, peer, stored,
                  static_cast<size_t>(converted.records.size()), converted.rejected,
                  converted.message);
  }

  // The answer to a decoded request once its valid items went to the sink (`stored`).
  Outcome Answer(Signal signal, int transport, Encoding encoding, std::string_view peer,
                 const absl::Status& stored, size_t accepted, int64_t rejected,
                 const std::string& message) {
    const int index = IndexOf(signal);
    if (!stored.ok()) {
      return Refuse(index, transport, encoding, Result::kUnavailable, peer,
                    absl::StrCat("not stored, retry later: ", stored.message()));
    }
    metrics_.accepted[index][transport]->Increment(static_cast<double>(accepted));
    Outcome outcome;
    if (rejected > 0) {
      metrics_.rejected[index][transport]->Increment(static_cast<double>(rejected));
      outcome.result = Result::kPartial;
      log_.Warn(index, transport, Result::kPartial, peer,
                absl::StrCat(accepted, " stored; ", message));
    }
    Count(index, transport, outcome.result);
    outcome.body = otlp::ExportResponse(signal, encoding, rejected, message);
    return outcome;
  }

  // Answers a failure: counts, logs, builds the google.rpc.Status body.
  Outcome Refuse(int signal, int transport, Encoding encoding, Result result, std::string_view peer,
                 std::string message) {
    Outcome outcome;
    outcome.result = result;
    switch (result) {
      case Result::kInvalid:
      case Result::kBadHttp:
        outcome.grpc_code = grpc::StatusCode::INVALID_ARGUMENT;
        outcome.http_status = 400;
        break;
      case Result::kTooLarge:
        outcome.grpc_code = grpc::StatusCode::RESOURCE_EXHAUSTED;
        outcome.http_status = 413;
        break;
      case Result::kUnsupportedMediaType:
        outcome.grpc_code = grpc::StatusCode::INVALID_ARGUMENT;
        outcome.http_status = 415;
        break;
      case Result::kUnavailable:
        outcome.grpc_code = grpc::StatusCode::UNAVAILABLE;
        outcome.http_status = 503;
        outcome.retry = true;
        break;
      case Result::kNotFound:
        outcome.grpc_code = grpc::StatusCode::UNIMPLEMENTED;
        outcome.http_status = 404;
        break;
      case Result::kMethodNotAllowed:
        outcome.grpc_code = grpc::StatusCode::UNIMPLEMENTED;
        outcome.http_status = 405;
        break;
      default:
        outcome.grpc_code = grpc::StatusCode::INTERNAL;
        outcome.http_status = 500;
        break;
    }
    Count(signal, transport, result);
    log_.Warn(signal, transport, result, peer, message);
    outcome.body = otlp::StatusBody(encoding, static_cast<int>(outcome.grpc_code), message,
                                    outcome.retry ? kRetryAfterSeconds : 0);
    outcome.message = std::move(message);
    return outcome;
  }

 private:
  void Count(int signal, int transport, Result result) {
    metrics_.request_counters[signal][transport][static_cast<size_t>(result)]->Increment();
  }

  const uint64_t max_request_bytes_;
  ReceivedRecordSink& sink_;
  OtlpMetrics metrics_;
  FailureLog log_;
};

namespace {

// The gRPC services, with raw ByteBuffers so that a malformed or oversized request gets the
// receiver's own answer and count.
class OtlpGrpcService : public grpc::Service {
 public:
  explicit OtlpGrpcService(OtlpCore& core) : core_(core) {
    AddUnary(kTraceExportMethod, Signal::kTraces);
    AddUnary(kLogsExportMethod, Signal::kLogs);
  }

 private:
  using Handler =
      grpc::internal::RpcMethodHandler<OtlpGrpcService, grpc::ByteBuffer, grpc::ByteBuffer>;

  void AddUnary(const char* path, Signal signal) {
    AddMethod(new grpc::internal::RpcServiceMethod(
        path, grpc::internal::RpcMethod::NORMAL_RPC,
        new Handler(
            [signal](OtlpGrpcService* service, grpc::ServerContext* context,
                     const grpc::ByteBuffer* request, grpc::ByteBuffer* response) {
              return service->Export(signal, *context, *request, *response);
            },
            this)));
  }

  grpc::Status Export(Signal signal, grpc::ServerContext& context, const grpc::ByteBuffer& request,
                      grpc::ByteBuffer& response) {
    Outcome outcome;
    const size_t size = request.Length();
    if (size > core_.max_request_bytes()) {
      outcome = core_.Refuse(
          IndexOf(signal), kGrpc, Encoding::kProtobuf, Result::kTooLarge, context.peer(),
          absl::StrCat("request of ", size, " bytes is over ingest.otlp.max_request_bytes (",
                       core_.max_request_bytes(), ")"));
    } else {
      grpc::Slice slice;
      if (!request.DumpToSingleSlice(&slice).ok()) {
        return grpc::Status(grpc::StatusCode::INTERNAL, "cannot read the request");
      }
      outcome =
          core_.Export(signal, kGrpc, Encoding::kProtobuf,
                       std::string_view(reinterpret_cast<const char*>(slice.begin()), slice.size()),
                       context.peer());
    }
    if (outcome.grpc_code == grpc::StatusCode::OK) {
      grpc::Slice slice(outcome.body);
      response = grpc::ByteBuffer(&slice, 1);
      return grpc::Status::OK;
    }
    if (outcome.retry) {
      // grpc-status-details-bin: the google.rpc.Status with its RetryInfo.
      return grpc::Status(outcome.grpc_code, outcome.message, outcome.body);
    }
    return grpc::Status(outcome.grpc_code, outcome.message);
  }

  OtlpCore& core_;
};

// The media type of a Content-Type value: before ';', trimmed, lower-case.
std::string MediaType(std::string_view content_type) {
  const size_t semicolon = content_type.find(';');
  std::string type(absl::StripAsciiWhitespace(
      absl::string_view(content_type.data(), std::min(semicolon, content_type.size()))));
  absl::AsciiStrToLower(&type);
  return type;
}

}  // namespace

struct OtlpReceiver::Impl {
  Impl(const OtlpReceiverConfig& config, ReceivedRecordSink& sink, prometheus::Registry& registry)
      : core(config.max_request_bytes, sink, registry),
        grpc_service(core),
        workers(std::max<unsigned>(4, 2 * std::thread::hardware_concurrency())) {}

  OtlpCore core;
  OtlpGrpcService grpc_service;
  std::unique_ptr<grpc::Server> grpc_server;
  uint16_t grpc_port = 0;

  asio::io_context io_context{kHttpIoThreads};
  tcp::acceptor acceptor{io_context};
  std::vector<std::thread> io_threads;
  asio::thread_pool workers;
  uint16_t http_port = 0;
  // Requests read and not yet answered (for a graceful Shutdown).
  std::atomic<int> in_flight{0};
  bool stopped = false;

  asio::awaitable<void> Accept() {
    for (;;) {
      beast::error_code error;
      tcp::socket socket(asio::make_strand(io_context));
      co_await acceptor.async_accept(socket, asio::redirect_error(asio::use_awaitable, error));
      if (error == asio::error::operation_aborted || !acceptor.is_open()) co_return;
      if (error) {
        spdlog::warn("otlp http: accept failed: {}", error.message());
        continue;
      }
      auto executor = socket.get_executor();
      asio::co_spawn(executor, Serve(std::move(socket)), common::ConnectionEnd("OTLP/HTTP"));
    }
  }

  // Fills `response` for a request whose headers and body were read.
  asio::awaitable<void> Answer(const http::request<http::string_body>& request,
                               const std::string& peer,
                               http::response<http::string_body>& response) {
    const std::string_view target(request.target().data(), request.target().size());
    const std::string_view path = target.substr(0, target.find('?'));
    const std::string media_type = MediaType(std::string_view(
        request[http::field::content_type].data(), request[http::field::content_type].size()));
    const Encoding encoding =
        media_type == "application/json" ? Encoding::kJson : Encoding::kProtobuf;
    response.set(http::field::content_type,
                 encoding == Encoding::kJson ? "application/json" : "application/x-protobuf");
    const auto refuse = [&](int signal, Result result, std::string message) {
      Outcome outcome = core.Refuse(signal, kHttp, encoding, result, peer, std::move(message));
      response.result(outcome.http_status);
      response.body() = std::move(outcome.body);
    };
    int signal = kNone;
    if (path == "/v1/traces") {
      signal = kTraces;
    } else if (path == "/v1/logs") {
      signal = kLogs;
    } else {
      refuse(kNone, Result::kNotFound,
             absl::StrCat("no such path: ", std::string(path), " (use /v1/traces or /v1/logs)"));
      co_return;
    }
    if (request.method() != http::verb::post) {
      response.set(http::field::allow, "POST");
      refuse(signal, Result::kMethodNotAllowed,
             absl::StrCat("method ", std::string(request.method_string()),
                          " is not allowed (use POST)"));
      co_return;
    }
    if (media_type != "application/json" && media_type != "application/x-protobuf") {
      refuse(signal, Result::kUnsupportedMediaType,
             absl::StrCat("Content-Type '", std::string(request[http::field::content_type]),
                          "' is not application/x-protobuf or application/json"));
      co_return;
    }
    std::string content_encoding(request[http::field::content_encoding]);
    absl::AsciiStrToLower(&content_encoding);
    const bool gzip = content_encoding == "gzip";
    if (!gzip && !content_encoding.empty() && content_encoding != "identity") {
      refuse(signal, Result::kUnsupportedMediaType,
             absl::StrCat("Content-Encoding '", content_encoding, "' is not gzip or identity"));
      co_return;
    }
    // Decompression, decoding, conversion and Store() run on a worker; this connection's
    // coroutine resumes on its strand with the outcome.
    const Signal which = signal == kTraces ? Signal::kTraces : Signal::kLogs;
    Outcome outcome = co_await asio::co_spawn(
        workers.get_executor(),
        [&]() -> asio::awaitable<Outcome> {
          if (!gzip) co_return core.Export(which, kHttp, encoding, request.body(), peer);
          absl::StatusOr<std::string> inflated =
              common::GzipDecompress(request.body(), core.max_request_bytes());
          if (!inflated.ok()) {
            co_return core.Refuse(
                signal, kHttp, encoding,
                absl::IsResourceExhausted(inflated.status()) ? Result::kTooLarge : Result::kInvalid,
                peer, std::string(inflated.status().message()));
          }
          co_return core.Export(which, kHttp, encoding, *inflated, peer);
        },
        asio::use_awaitable);
    response.result(outcome.http_status);
    if (outcome.retry) response.set(http::field::retry_after, std::to_string(kRetryAfterSeconds));
    response.body() = std::move(outcome.body);
  }

  asio::awaitable<void> Serve(tcp::socket socket) {
    beast::error_code endpoint_error;
    const auto endpoint = socket.remote_endpoint(endpoint_error);
    const std::string peer =
        endpoint_error ? std::string("unknown")
                       : absl::StrCat(endpoint.address().to_string(), ":", endpoint.port());
    beast::tcp_stream stream(std::move(socket));
    beast::flat_buffer buffer(common::kMaxHttpReadBufferBytes);
    for (;;) {
      http::request_parser<http::string_body> parser;
      parser.body_limit(core.max_request_bytes());
      stream.expires_after(kHttpIdleTimeout);
      beast::error_code read_error;
      co_await http::async_read_header(stream, buffer, parser,
                                       asio::redirect_error(asio::use_awaitable, read_error));
      if (!read_error && beast::iequals(parser.get()[http::field::expect], "100-continue")) {
        http::response<http::empty_body> proceed(http::status::continue_, parser.get().version());
        co_await http::async_write(stream, proceed,
                                   asio::redirect_error(asio::use_awaitable, read_error));
      }
      if (!read_error && !parser.is_done()) {
        co_await http::async_read(stream, buffer, parser,
                                  asio::redirect_error(asio::use_awaitable, read_error));
      }
      if (read_error == http::error::end_of_stream || read_error == beast::error::timeout ||
          read_error == asio::error::operation_aborted || read_error == asio::error::eof ||
          read_error == asio::error::connection_reset) {
        break;
      }
      http::response<http::string_body> response;
      bool keep_alive = false;
      in_flight.fetch_add(1);
      if (read_error) {
        // The request could not be read: answer and close the connection.
        Encoding encoding = Encoding::kProtobuf;
        int signal = kNone;
        // A body over the limit is seen once the header is complete (Content-Length) or while
        // reading the body: the header is there either way.
        if (parser.is_header_done() || read_error == http::error::body_limit) {
          const auto& header = parser.get();
          if (MediaType(std::string_view(header[http::field::content_type].data(),
                                         header[http::field::content_type].size())) ==
              "application/json") {
            encoding = Encoding::kJson;
          }
          const std::string_view target(header.target().data(), header.target().size());
          const std::string_view path = target.substr(0, target.find('?'));
          signal = path == "/v1/traces" ? kTraces : path == "/v1/logs" ? kLogs : kNone;
        }
        const bool too_large = read_error == http::error::body_limit;
        Outcome outcome = core.Refuse(
            signal, kHttp, encoding, too_large ? Result::kTooLarge : Result::kBadHttp, peer,
            too_large ? absl::StrCat("request body is over ingest.otlp.max_request_bytes (",
                                     core.max_request_bytes(), ")")
                      : absl::StrCat("unreadable HTTP request: ", read_error.message()));
        response.result(outcome.http_status);
        response.set(http::field::content_type,
                     encoding == Encoding::kJson ? "application/json" : "application/x-protobuf");
        response.body() = std::move(outcome.body);
      } else {
        const http::request<http::string_body>& request = parser.get();
        stream.expires_never();
        co_await Answer(request, peer, response);
        keep_alive = request.keep_alive();
        response.version(request.version());
      }
      response.keep_alive(keep_alive);
      response.prepare_payload();
      stream.expires_after(kHttpIdleTimeout);
      beast::error_code write_error;
      co_await http::async_write(stream, response,
                                 asio::redirect_error(asio::use_awaitable, write_error));
      in_flight.fetch_sub(1);
      if (write_error) break;
      if (!keep_alive) {
        // A lingering close: what the client still sends (the rest of a refused body) is read
        // and dropped for a moment, so the close does not reset the connection before the
        // client has read the answer.
        beast::error_code ignored;
        stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
        stream.expires_after(std::chrono::seconds(2));
        std::array<char, 16384> scratch;
        while (!ignored) {
          co_await stream.async_read_some(asio::buffer(scratch),
                                          asio::redirect_error(asio::use_awaitable, ignored));
        }
        break;
      }
    }
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  }
};

OtlpReceiver::OtlpReceiver(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

absl::StatusOr<std::unique_ptr<OtlpReceiver>> OtlpReceiver::Start(const OtlpReceiverConfig& config,
                                                                  ReceivedRecordSink& sink,
                                                                  prometheus::Registry& registry) {
  auto impl = std::make_unique<Impl>(config, sink, registry);

  // Up to twice the limit reaches the receiver (and is answered and counted by it); beyond,
  // gRPC itself answers RESOURCE_EXHAUSTED (after decompression too).
  absl::StatusOr<GrpcListener> listener =
      StartGrpcListener(config.grpc_listen, impl->grpc_service, config.max_request_bytes * 2,
                        "ingest.otlp.grpc_listen", "OTLP gRPC receiver");
  if (!listener.ok()) return listener.status();
  impl->grpc_server = std::move(listener->server);
  impl->grpc_port = listener->port;

  beast::error_code error;
  const auto address = asio::ip::make_address(config.http_listen.host, error);
  if (error) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ingest.otlp.http_listen: '", config.http_listen.host, "' is not an IP address"));
  }
  const tcp::endpoint endpoint(address, config.http_listen.port);
  impl->acceptor.open(endpoint.protocol(), error);
  if (!error) impl->acceptor.set_option(asio::socket_base::reuse_address(true), error);
  if (!error) impl->acceptor.bind(endpoint, error);
  if (!error) impl->acceptor.listen(asio::socket_base::max_listen_connections, error);
  if (error) {
    impl->grpc_server->Shutdown();
    return absl::UnavailableError(absl::StrCat("ingest.otlp.http_listen: cannot listen on ",
                                               config.http_listen.ToString(), ": ",
                                               error.message()));
  }
  impl->http_port = impl->acceptor.local_endpoint().port();
  asio::co_spawn(impl->io_context, impl->Accept(), asio::detached);
  Impl* raw = impl.get();
  for (int i = 0; i < kHttpIoThreads; ++i) {
    impl->io_threads.emplace_back([raw] { raw->io_context.run(); });
  }
  spdlog::info("OTLP receiver listening: gRPC on {}:{}, HTTP on {}:{}", config.grpc_listen.host,
               impl->grpc_port, config.http_listen.host, impl->http_port);
  return std::unique_ptr<OtlpReceiver>(new OtlpReceiver(std::move(impl)));
}

void OtlpReceiver::Shutdown(absl::Duration grace) {
  Impl& impl = *impl_;
  if (impl.stopped) return;
  impl.stopped = true;
  const absl::Time deadline = absl::Now() + grace;
  // Stop accepting HTTP connections, and let the requests being answered finish.
  asio::post(impl.io_context, [&impl] {
    beast::error_code ignored;
    impl.acceptor.close(ignored);
  });
  impl.grpc_server->Shutdown(absl::ToChronoTime(deadline));
  impl.grpc_server->Wait();
  while (impl.in_flight.load() > 0 && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(5));
  impl.io_context.stop();
  for (std::thread& thread : impl.io_threads) thread.join();
  // A request still on a worker finishes its Store() before this returns.
  impl.workers.join();
}

OtlpReceiver::~OtlpReceiver() { Shutdown(absl::ZeroDuration()); }

uint16_t OtlpReceiver::grpc_port() const { return impl_->grpc_port; }
uint16_t OtlpReceiver::http_port() const { return impl_->http_port; }

}  // namespace meshtel::collector
