#pragma once
// RecordIngestServer: the gRPC server for meshtel.v1.RecordService/StreamRecords.
//
// Each proxy keeps one bidirectional stream open. For every RecordBatch received the server
// answers one RecordAck, in order:
//   - decoded, new (instance, sequence): handed to the RecordBatchSink; acked OK after Consume()
//     returned, then counted (CountStored());
//   - already processed (a resend after reconnect): acked OK without processing again;
//   - malformed, or missing instance id / sequence: acked INVALID_ARGUMENT, stream goes on;
//   - larger than ingest.max_batch_bytes: acked RESOURCE_EXHAUSTED, stream goes on
//     (larger than 4x that, gRPC itself ends the stream with RESOURCE_EXHAUSTED);
//   - the sink failed: no ack; the stream ends with UNAVAILABLE and the proxy resends.
// Every outcome is counted in meshtel_ingest_batches_total{result=...}.
//
// Other services given to Start() (PolicyService) are served on the same port, by the same
// gRPC server.
//
// Threading: gRPC's sync server runs one thread per open stream. Deduplication state is per
// proxy instance and in memory (a restarted collector processes resent batches again).

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "collector/config/collector_config.h"
#include "collector/ingest/record_batch_sink.h"
#include "prometheus/registry.h"

namespace grpc {
class Server;
class Service;
}  // namespace grpc

namespace meshtel::collector {

class RecordIngestService;

class RecordIngestServer {
 public:
  // Binds config.listen and starts serving RecordService and `other_services`. `sink` and the
  // other services must outlive the server.
  static absl::StatusOr<std::unique_ptr<RecordIngestServer>> Start(
      const IngestConfig& config, RecordBatchSink& sink, prometheus::Registry& registry,
      const std::vector<grpc::Service*>& other_services = {});
  ~RecordIngestServer();

  // Stops accepting streams, lets open ones finish until `grace` has passed, then cancels them.
  void Shutdown(absl::Duration grace);

  uint16_t port() const { return port_; }

 private:
  RecordIngestServer(std::unique_ptr<RecordIngestService> service,
                     std::unique_ptr<grpc::Server> server, uint16_t port);

  std::unique_ptr<RecordIngestService> service_;
  std::unique_ptr<grpc::Server> server_;
  uint16_t port_;
};

}  // namespace meshtel::collector
