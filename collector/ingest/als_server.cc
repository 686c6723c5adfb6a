#include "collector/ingest/als_server.h"

// Tested by: tests/collector/ingest/als_server_test.cc, tests/e2e/als_test.cc

#include <algorithm>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "collector/ingest/als_message_decoder.h"
#include "collector/ingest/grpc_listener.h"
#include "envoy/service/accesslog/v3/als.grpc.pb.h"
#include "google/protobuf/arena.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/impl/rpc_service_method.h"
#include "grpcpp/support/method_handler.h"
#include "prometheus/counter.h"
#include "prometheus/gauge.h"
#include "spdlog/spdlog.h"

namespace meshtel::collector {
namespace {

using envoy::service::accesslog::v3::StreamAccessLogsResponse;
using RawReader = grpc::ServerReader<grpc::ByteBuffer>;

// The arena block each stream keeps for its messages (Envoy flushes about 16 KiB of entries).
constexpr size_t kArenaFirstBlockBytes = 256 << 10;
// Records a stream keeps for reuse; after a larger message they are freed.
constexpr int kMaxKeptRecords = 2048;

struct AlsMetrics {
  explicit AlsMetrics(prometheus::Registry& registry)
      : messages(prometheus::BuildCounter()
                     .Name("meshtel_als_messages_total")
                     .Help("Envoy ALS StreamAccessLogsMessages received, by outcome.")
                     .Register(registry)),
        messages_ok(messages.Add({{"result", "ok"}})),
        messages_invalid(messages.Add({{"result", "invalid"}})),
        messages_too_large(messages.Add({{"result", "too_large"}})),
        messages_no_identifier(messages.Add({{"result", "no_identifier"}})),
        messages_unavailable(messages.Add({{"result", "unavailable"}})),
        entries(prometheus::BuildCounter()
                    .Name("meshtel_als_entries_total")
                    .Help("Envoy ALS log entries, by outcome: stored, intermediate (skipped), "
                          "lost (the store refused their message).")
                    .Register(registry)),
        entries_stored(entries.Add({{"result", "stored"}})),
        entries_intermediate(entries.Add({{"result", "intermediate"}})),
        entries_lost(entries.Add({{"result", "lost"}})),
        entries_text_repaired(prometheus::BuildCounter()
                                  .Name("meshtel_als_entries_text_repaired_total")
                                  .Help("Envoy ALS log entries with text that is not UTF-8 "
                                        "(made valid: each bad byte U+FFFD), stored.")
                                  .Register(registry)
                                  .Add({})),
        streams(prometheus::BuildGauge()
                    .Name("meshtel_als_streams")
                    .Help("Envoy ALS streams open now.")
                    .Register(registry)
                    .Add({})) {}

  prometheus::Family<prometheus::Counter>& messages;
  prometheus::Counter& messages_ok;
  prometheus::Counter& messages_invalid;
  prometheus::Counter& messages_too_large;
  prometheus::Counter& messages_no_identifier;
  prometheus::Counter& messages_unavailable;
  prometheus::Family<prometheus::Counter>& entries;
  prometheus::Counter& entries_stored;
  prometheus::Counter& entries_intermediate;
  prometheus::Counter& entries_lost;
  prometheus::Counter& entries_text_repaired;
  prometheus::Gauge& streams;
};

}  // namespace

class AlsService : public grpc::Service {
 public:
  AlsService(const AlsConfig& config, ReceivedRecordSink& sink, prometheus::Registry& registry)
      : max_message_bytes_(config.max_message_bytes), sink_(sink), metrics_(registry) {
    AddMethod(new grpc::internal::RpcServiceMethod(
        kStreamAccessLogsMethod, grpc::internal::RpcMethod::CLIENT_STREAMING,
        new grpc::internal::ClientStreamingHandler<AlsService, grpc::ByteBuffer,
                                                   StreamAccessLogsResponse>(
            [](AlsService* service, grpc::ServerContext* context, RawReader* reader,
               StreamAccessLogsResponse*) { return service->StreamAccessLogs(context, reader); },
            this)));
  }

 private:
  grpc::Status StreamAccessLogs(grpc::ServerContext* context, RawReader* reader) {
    metrics_.streams.Increment();
    const std::string peer = context->peer();
    spdlog::debug("ALS stream opened by {}", peer);
    grpc::Status result = ServeStream(peer, *reader);
    metrics_.streams.Decrement();
    spdlog::debug("ALS stream from {} ended: {}", peer, result.error_message());
    return result;
  }

  grpc::Status ServeStream(const std::string& peer, RawReader& reader) {
    grpc::ByteBuffer request;
    // What protobuf decodes (the identifier, irregular entries and messages) goes into an arena
    // that is reset for the next message; its first block is reused from message to message.
    std::vector<char> first_block(kArenaFirstBlockBytes);
    google::protobuf::ArenaOptions arena_options;
    arena_options.initial_block = first_block.data();
    arena_options.initial_block_size = first_block.size();
    google::protobuf::Arena arena(arena_options);
    AlsStreamDecoder decoder;
    // The records are reused from message to message (AlsStreamDecoder::Decode replaces them):
    // they keep their strings' memory, so converting allocates nothing once the stream is warm.
    google::protobuf::RepeatedPtrField<meshtel::v1::RequestRecord> records;
    while (reader.Read(&request)) {
      arena.Reset();
      if (records.size() > kMaxKeptRecords) {
        google::protobuf::RepeatedPtrField<meshtel::v1::RequestRecord>().Swap(&records);
      }
      const size_t size = request.Length();
      const bool known = decoder.node().has_value();
      if (size > max_message_bytes_) {
        metrics_.messages_too_large.Increment();
        const std::string reason =
            absl::StrCat("ALS message of ", size, " bytes exceeds ingest.als.max_message_bytes (",
                         max_message_bytes_, ")");
        spdlog::warn("ALS stream from {}: {}; {}", peer, reason,
                     known ? "message skipped" : "stream closed (no identifier yet)");
        if (!known) return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, reason);
        continue;
      }
      grpc::Slice slice;
      AlsConversion conversion;
      const AlsStreamDecoder::Outcome outcome =
          request.DumpToSingleSlice(&slice).ok()
              ? decoder.Decode(
                    std::string_view(reinterpret_cast<const char*>(slice.begin()), slice.size()),
                    arena, records, conversion)
              : AlsStreamDecoder::Outcome::kInvalid;
      if (outcome == AlsStreamDecoder::Outcome::kInvalid) {
        metrics_.messages_invalid.Increment();
        spdlog::warn(
            "ALS stream from {}: a message of {} bytes is not a valid StreamAccessLogsMessage; {}",
            peer, size, known ? "message skipped" : "stream closed (no identifier yet)");
        if (!known) {
          return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                              "not a valid envoy.service.accesslog.v3.StreamAccessLogsMessage");
        }
        continue;
      }
      if (outcome == AlsStreamDecoder::Outcome::kNoIdentifier) {
        metrics_.messages_no_identifier.Increment();
        spdlog::warn("ALS stream from {}: the first message has no identifier; stream closed",
                     peer);
        return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                            "the first message of a stream must carry the identifier");
      }
      if (!known) {
        spdlog::debug("ALS stream from {}: node '{}', log '{}'", peer, decoder.node()->node_id,
                      decoder.node()->log_name);
      }
      if (conversion.skipped > 0) {
        metrics_.entries_intermediate.Increment(static_cast<double>(conversion.skipped));
      }
      if (!records.empty()) {
        if (absl::Status stored = sink_.Store(records); !stored.ok()) {
          metrics_.messages_unavailable.Increment();
          metrics_.entries_lost.Increment(static_cast<double>(records.size()));
          spdlog::warn("ALS stream from {}: {} entries not stored ({}); stream closed", peer,
                       records.size(), stored.ToString());
          return grpc::Status(grpc::StatusCode::UNAVAILABLE, std::string(stored.message()));
        }
        metrics_.entries_stored.Increment(static_cast<double>(records.size()));
        if (conversion.text_repaired > 0) {
          metrics_.entries_text_repaired.Increment(static_cast<double>(conversion.text_repaired));
          spdlog::debug("ALS stream from {}: {} entries with text that is not UTF-8, repaired",
                        peer, conversion.text_repaired);
        }
      }
      metrics_.messages_ok.Increment();
    }
    return grpc::Status::OK;
  }

  const uint64_t max_message_bytes_;
  ReceivedRecordSink& sink_;
  AlsMetrics metrics_;
};

AlsServer::AlsServer(std::unique_ptr<AlsService> service, std::unique_ptr<grpc::Server> server,
                     uint16_t port)
    : service_(std::move(service)), server_(std::move(server)), port_(port) {}

absl::StatusOr<std::unique_ptr<AlsServer>> AlsServer::Start(const AlsConfig& config,
                                                            ReceivedRecordSink& sink,
                                                            prometheus::Registry& registry) {
  auto service = std::make_unique<AlsService>(config, sink, registry);
  absl::StatusOr<GrpcListener> listener =
      StartGrpcListener(config.listen, *service, config.max_message_bytes * 4, "ingest.als.listen",
                        "Envoy ALS receiver");
  if (!listener.ok()) return listener.status();
  return std::unique_ptr<AlsServer>(
      new AlsServer(std::move(service), std::move(listener->server), listener->port));
}

void AlsServer::Shutdown(absl::Duration grace) {
  if (server_ == nullptr) return;
  server_->Shutdown(absl::ToChronoTime(absl::Now() + grace));
  server_->Wait();
  server_.reset();
}

AlsServer::~AlsServer() { Shutdown(absl::ZeroDuration()); }

}  // namespace meshtel::collector
