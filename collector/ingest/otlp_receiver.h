#pragma once
// OtlpReceiver: the collector's OTLP receiver (wire-facts §2; docs/ingest.md "## OTLP").
//
//   gRPC (ingest.otlp.grpc_listen): /opentelemetry.proto.collector.trace.v1.TraceService/Export
//     and /opentelemetry.proto.collector.logs.v1.LogsService/Export (grpc-encoding gzip is
//     handled by gRPC itself);
//   HTTP/1.1 (ingest.otlp.http_listen): POST /v1/traces and /v1/logs with Content-Type
//     application/x-protobuf or application/json, Content-Encoding gzip or none; the answer has
//     the request's content type.
// Each request is decoded and converted (otlp_convert.h); the valid items go to
// ReceivedRecordSink::Store in one call, and the answer goes out only after it returned:
//   - all stored: gRPC OK / HTTP 200, an empty Export*ServiceResponse;
//   - some items invalid: the rest stored, OK / 200 with partial_success (rejected count, reason);
//   - body not a valid request: INVALID_ARGUMENT / 400;
//   - body over max_request_bytes after decompression: RESOURCE_EXHAUSTED / 413 (gRPC messages
//     over twice the limit are refused by gRPC itself, with the same code, before they are seen);
//   - Store() failed (store full or closed): UNAVAILABLE with google.rpc.RetryInfo / 503 with
//     Retry-After; nothing of the request was stored;
//   - HTTP only: other Content-Type or Content-Encoding 415, other path 404, other method 405,
//     unparsable HTTP 400 (the connection is then closed).
// HTTP error bodies are google.rpc.Status in the request's encoding (protobuf when unknown).
// Every outcome is counted in meshtel_otlp_requests_total{signal,transport,result} and the items
// in meshtel_otlp_items_total{signal,transport,result=accepted|rejected}; failures are logged at
// warn level, at most once per 10 s per (signal, transport, result), with the number left out.
//
// Threading: gRPC's sync server runs the gRPC calls on its own threads. The HTTP server runs
// Boost.Beast connections (keep-alive, any number) on two I/O threads; decoding, conversion and
// Store() run on a worker pool so a slow store never blocks the I/O threads. `sink` must outlive
// the receiver.

#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "collector/config/collector_config.h"
#include "collector/ingest/received_record_sink.h"
#include "prometheus/registry.h"

namespace meshtel::collector {

class OtlpReceiver {
 public:
  // Binds both listeners (port 0 picks a free port) and starts serving. Errors name the field.
  static absl::StatusOr<std::unique_ptr<OtlpReceiver>> Start(const OtlpReceiverConfig& config,
                                                             ReceivedRecordSink& sink,
                                                             prometheus::Registry& registry);
  ~OtlpReceiver();

  OtlpReceiver(const OtlpReceiver&) = delete;
  OtlpReceiver& operator=(const OtlpReceiver&) = delete;

  // Stops accepting, lets requests in progress finish until `grace` has passed, then closes
  // everything. After it returns, Store() is no longer called. Idempotent.
  void Shutdown(absl::Duration grace);

  uint16_t grpc_port() const;
  uint16_t http_port() const;

  struct Impl;

 private:
  explicit OtlpReceiver(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace meshtel::collector
