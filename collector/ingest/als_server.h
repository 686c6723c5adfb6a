#pragma once
// AlsServer: the Envoy gRPC Access Log Service v3 receiver
// (/envoy.service.accesslog.v3.AccessLogService/StreamAccessLogs, client streaming; wire-facts
// §1). Envoy (Istio's envoyHttpAls / envoyTcpAls providers) keeps streams open and writes
// StreamAccessLogsMessages; it never reads an answer.
//
// Per stream: the Identifier of the first message is remembered (Envoy sends it only there) and
// every entry is converted into a RequestRecord (als_message_decoder.h decodes, als_converter.h
// maps). The records of one message are
// handed to ReceivedRecordSink::Store in one call; they count as received (meshtel_als_entries_
// total{result="stored"}) only once it returned OK. Outcomes, counted in
// meshtel_als_messages_total{result=...}:
//   - ok: stored (or only intermediate entries, skipped: meshtel_als_entries_total{result=
//     "intermediate"});
//   - invalid (not a StreamAccessLogsMessage) / too_large (over ingest.als.max_message_bytes):
//     logged and skipped; the stream goes on when its Identifier is known, else it ends with
//     INVALID_ARGUMENT / RESOURCE_EXHAUSTED (Envoy reconnects and sends the Identifier again).
//     Messages over 4x max_message_bytes are refused by gRPC itself, which ends the stream
//     (RESOURCE_EXHAUSTED) without this server seeing them.
//   - no_identifier: the first message of a stream has no Identifier; the stream ends with
//     INVALID_ARGUMENT.
//   - unavailable: Store() failed; the stream ends with UNAVAILABLE and the message's entries
//     are lost (Envoy does not resend; meshtel_als_entries_total{result="lost"}).
// Nothing already stored is touched by a bad message. meshtel_als_streams is the number of open
// streams.
//
// Threading: gRPC's sync server runs one thread per open stream; Store() is called from them
// concurrently. Ownership: `sink` and `registry` must outlive the server.

#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "collector/config/collector_config.h"
#include "collector/ingest/received_record_sink.h"
#include "prometheus/registry.h"

namespace grpc {
class Server;
}

namespace meshtel::collector {

// The gRPC method path of StreamAccessLogs.
inline constexpr char kStreamAccessLogsMethod[] =
    "/envoy.service.accesslog.v3.AccessLogService/StreamAccessLogs";

class AlsService;

class AlsServer {
 public:
  // Binds config.listen and starts serving. Errors name ingest.als.listen.
  static absl::StatusOr<std::unique_ptr<AlsServer>> Start(const AlsConfig& config,
                                                          ReceivedRecordSink& sink,
                                                          prometheus::Registry& registry);
  ~AlsServer();

  // Stops accepting streams, lets open ones finish until `grace` has passed, then cancels them.
  void Shutdown(absl::Duration grace);

  uint16_t port() const { return port_; }

 private:
  AlsServer(std::unique_ptr<AlsService> service, std::unique_ptr<grpc::Server> server,
            uint16_t port);

  std::unique_ptr<AlsService> service_;
  std::unique_ptr<grpc::Server> server_;
  uint16_t port_;
};

}  // namespace meshtel::collector
