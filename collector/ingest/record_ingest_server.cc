#include "collector/ingest/record_ingest_server.h"

#include <algorithm>
#include <mutex>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "collector/common/record_service_method.h"
#include "collector/ingest/grpc_listener.h"
#include "collector/ingest/record_batch_wire.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/impl/rpc_service_method.h"
#include "grpcpp/support/method_handler.h"
#include "prometheus/counter.h"
#include "prometheus/gauge.h"
#include "spdlog/spdlog.h"

namespace meshtel::collector {
namespace {

using RawStream = grpc::ServerReaderWriter<grpc::ByteBuffer, grpc::ByteBuffer>;

struct IngestMetrics {
  explicit IngestMetrics(prometheus::Registry& registry)
      : batches(prometheus::BuildCounter()
                    .Name("meshtel_ingest_batches_total")
                    .Help("RecordBatches received from proxies, by outcome.")
                    .Register(registry)),
        batches_ok(batches.Add({{"result", "ok"}})),
        batches_duplicate(batches.Add({{"result", "duplicate"}})),
        batches_invalid(batches.Add({{"result", "invalid"}})),
        batches_too_large(batches.Add({{"result", "too_large"}})),
        batches_unavailable(batches.Add({{"result", "unavailable"}})),
        records(prometheus::BuildCounter()
                    .Name("meshtel_ingest_records_total")
                    .Help("Request records processed (duplicates excluded).")
                    .Register(registry)
                    .Add({})),
        records_invalid(prometheus::BuildCounter()
                            .Name("meshtel_ingest_records_invalid_total")
                            .Help("Records left out of a stored batch because they are not valid "
                                  "meshtel.v1.RequestRecords (the rest of the batch is stored).")
                            .Register(registry)
                            .Add({})),
        proxy_dropped(prometheus::BuildCounter()
                          .Name("meshtel_proxy_dropped_records_total")
                          .Help("Records proxies reported dropping because their buffer was full.")
                          .Register(registry)
                          .Add({})),
        streams(prometheus::BuildGauge()
                    .Name("meshtel_ingest_streams")
                    .Help("RecordService streams open now.")
                    .Register(registry)
                    .Add({})) {}

  prometheus::Family<prometheus::Counter>& batches;
  prometheus::Counter& batches_ok;
  prometheus::Counter& batches_duplicate;
  prometheus::Counter& batches_invalid;
  prometheus::Counter& batches_too_large;
  prometheus::Counter& batches_unavailable;
  prometheus::Counter& records;
  prometheus::Counter& records_invalid;
  prometheus::Counter& proxy_dropped;
  prometheus::Gauge& streams;
};

// What the collector remembers of one proxy instance: its stored progress, loaded from the sink
// on first sight. `mutex` serialises the instance's batches across streams, so a resend racing
// its original is processed once.
struct InstanceState {
  std::mutex mutex;
  bool loaded = false;
  InstanceProgress progress;
};

}  // namespace

class RecordIngestService : public grpc::Service {
 public:
  RecordIngestService(const IngestConfig& config, RecordBatchSink& sink,
                      prometheus::Registry& registry)
      : max_batch_bytes_(config.max_batch_bytes), sink_(sink), metrics_(registry) {
    AddMethod(new grpc::internal::RpcServiceMethod(
        common::kStreamRecordsMethod, grpc::internal::RpcMethod::BIDI_STREAMING,
        new grpc::internal::BidiStreamingHandler<RecordIngestService, grpc::ByteBuffer,
                                                 grpc::ByteBuffer>(
            [](RecordIngestService* service, grpc::ServerContext* context, RawStream* stream) {
              return service->StreamRecords(context, stream);
            },
            this)));
  }

 private:
  grpc::Status StreamRecords(grpc::ServerContext* context, RawStream* stream) {
    metrics_.streams.Increment();
    const std::string peer = context->peer();
    spdlog::debug("record stream opened by {}", peer);
    grpc::Status result = ServeStream(*stream);
    metrics_.streams.Decrement();
    spdlog::debug("record stream from {} ended: {}", peer, result.error_message());
    return result;
  }

  grpc::Status ServeStream(RawStream& stream) {
    grpc::ByteBuffer request;
    meshtel::v1::RecordBatch batch;
    std::vector<std::string_view> record_bytes;
    meshtel::v1::RecordAck ack;
    std::string serialized_ack;
    while (stream.Read(&request)) {
      ack.Clear();
      bool stored = false;
      if (grpc::Status status = Handle(request, batch, record_bytes, ack, stored); !status.ok()) {
        return status;
      }
      ack.SerializeToString(&serialized_ack);
      grpc::Slice slice(serialized_ack);
      grpc::ByteBuffer response(&slice, 1);
      const bool written = stream.Write(response);
      // Counted once the ack is on its way, so the proxy's next batch overlaps the counting.
      if (stored) sink_.CountStored(batch);
      if (!written) break;
    }
    return grpc::Status::OK;
  }

  // Fills `ack` for one received message and sets `stored` when the sink stored `batch`; a
  // non-OK return ends the stream.
  grpc::Status Handle(const grpc::ByteBuffer& request, meshtel::v1::RecordBatch& batch,
                      std::vector<std::string_view>& record_bytes, meshtel::v1::RecordAck& ack,
                      bool& stored) {
    const size_t size = request.Length();
    if (size > max_batch_bytes_) {
      metrics_.batches_too_large.Increment();
      Reject(ack, grpc::StatusCode::RESOURCE_EXHAUSTED,
             absl::StrCat("batch of ", size, " bytes exceeds ingest.max_batch_bytes (",
                          max_batch_bytes_, ")"));
      return grpc::Status::OK;
    }
    grpc::Slice slice;
    if (!request.DumpToSingleSlice(&slice).ok()) {
      metrics_.batches_invalid.Increment();
      Reject(ack, grpc::StatusCode::INVALID_ARGUMENT,
             "batch is not a valid meshtel.v1.RecordBatch");
      return grpc::Status::OK;
    }
    const std::string_view bytes(reinterpret_cast<const char*>(slice.begin()), slice.size());
    // A batch in which some records do not parse (text that is not UTF-8, say) keeps the others:
    // those are stored, the bad ones counted and named in the log.
    bool salvaged = false;
    size_t invalid_records = 0;
    if (!batch.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
      if (!SalvageRecordBatch(bytes, batch, record_bytes, invalid_records)) {
        metrics_.batches_invalid.Increment();
        Reject(ack, grpc::StatusCode::INVALID_ARGUMENT,
               "batch is not a valid meshtel.v1.RecordBatch");
        return grpc::Status::OK;
      }
      salvaged = true;
    }
    if (batch.proxy_instance_id().empty() || batch.sequence() == 0) {
      metrics_.batches_invalid.Increment();
      Reject(ack, grpc::StatusCode::INVALID_ARGUMENT,
             "batch has no proxy_instance_id or a zero sequence");
      ack.set_sequence(batch.sequence());
      return grpc::Status::OK;
    }
    ack.set_sequence(batch.sequence());

    InstanceState& instance = Instance(batch.proxy_instance_id());
    std::lock_guard<std::mutex> lock(instance.mutex);
    if (!instance.loaded) {
      absl::StatusOr<InstanceProgress> stored = sink_.LoadProgress(batch.proxy_instance_id());
      if (!stored.ok()) {
        metrics_.batches_unavailable.Increment();
        spdlog::warn("progress of {} unreadable: {}", batch.proxy_instance_id(),
                     stored.status().ToString());
        return grpc::Status(grpc::StatusCode::UNAVAILABLE, std::string(stored.status().message()));
      }
      instance.progress = *stored;
      instance.loaded = true;
    }
    if (batch.sequence() <= instance.progress.highest_sequence) {
      metrics_.batches_duplicate.Increment();
      ack.set_highest_stored_sequence(instance.progress.highest_sequence);
      return grpc::Status::OK;
    }
    InstanceProgress next = instance.progress;
    next.highest_sequence = batch.sequence();
    next.dropped_records_total =
        std::max(instance.progress.dropped_records_total, batch.dropped_records_total());
    // The records' bytes as received go to the store as they are (they parsed above); should the
    // walk disagree with the parse, the sink serializes the decoded records instead.
    const bool have_bytes = (salvaged || RecordBatchRecordBytes(bytes, record_bytes)) &&
                            record_bytes.size() == static_cast<size_t>(batch.records_size());
    const absl::Status status =
        have_bytes ? sink_.ConsumeReceived(batch, record_bytes, next) : sink_.Consume(batch, next);
    if (!status.ok()) {
      metrics_.batches_unavailable.Increment();
      spdlog::warn("batch {} of {} not stored: {}", batch.sequence(), batch.proxy_instance_id(),
                   status.ToString());
      return grpc::Status(grpc::StatusCode::UNAVAILABLE, std::string(status.message()));
    }
    if (next.dropped_records_total > instance.progress.dropped_records_total) {
      metrics_.proxy_dropped.Increment(static_cast<double>(
          next.dropped_records_total - instance.progress.dropped_records_total));
    }
    instance.progress = next;
    stored = true;
    if (invalid_records > 0) {
      metrics_.records_invalid.Increment(static_cast<double>(invalid_records));
      spdlog::warn(
          "batch {} of {}: {} of its {} records are not valid meshtel.v1.RequestRecords (text "
          "that is not UTF-8, say); stored the other {}",
          batch.sequence(), batch.proxy_instance_id(), invalid_records,
          invalid_records + static_cast<size_t>(batch.records_size()), batch.records_size());
    }
    metrics_.batches_ok.Increment();
    metrics_.records.Increment(static_cast<double>(batch.records_size()));
    ack.set_highest_stored_sequence(instance.progress.highest_sequence);
    return grpc::Status::OK;
  }

  static void Reject(meshtel::v1::RecordAck& ack, grpc::StatusCode code, std::string message) {
    spdlog::warn("rejected a record batch: {}", message);
    ack.set_status_code(static_cast<int32_t>(code));
    ack.set_status_message(std::move(message));
  }

  InstanceState& Instance(const std::string& instance_id) {
    std::lock_guard<std::mutex> lock(instances_mutex_);
    std::unique_ptr<InstanceState>& state = instances_[instance_id];
    if (state == nullptr) state = std::make_unique<InstanceState>();
    return *state;
  }

  const uint64_t max_batch_bytes_;
  RecordBatchSink& sink_;
  IngestMetrics metrics_;
  std::mutex instances_mutex_;
  absl::flat_hash_map<std::string, std::unique_ptr<InstanceState>> instances_
      ABSL_GUARDED_BY(instances_mutex_);
};

RecordIngestServer::RecordIngestServer(std::unique_ptr<RecordIngestService> service,
                                       std::unique_ptr<grpc::Server> server, uint16_t port)
    : service_(std::move(service)), server_(std::move(server)), port_(port) {}

absl::StatusOr<std::unique_ptr<RecordIngestServer>> RecordIngestServer::Start(
    const IngestConfig& config, RecordBatchSink& sink, prometheus::Registry& registry,
    const std::vector<grpc::Service*>& other_services) {
  auto service = std::make_unique<RecordIngestService>(config, sink, registry);
  std::vector<grpc::Service*> services = {service.get()};
  services.insert(services.end(), other_services.begin(), other_services.end());
  absl::StatusOr<GrpcListener> listener = StartGrpcListener(
      config.listen, services, config.max_batch_bytes * 4, "ingest.listen", "record ingest");
  if (!listener.ok()) return listener.status();
  return std::unique_ptr<RecordIngestServer>(
      new RecordIngestServer(std::move(service), std::move(listener->server), listener->port));
}

void RecordIngestServer::Shutdown(absl::Duration grace) {
  if (server_ == nullptr) return;
  server_->Shutdown(absl::ToChronoTime(absl::Now() + grace));
  server_->Wait();
  server_.reset();
}

RecordIngestServer::~RecordIngestServer() { Shutdown(absl::ZeroDuration()); }

}  // namespace meshtel::collector
