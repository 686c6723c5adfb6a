#pragma once
// StartGrpcListener: the one way the collector's gRPC receivers (proxy records, Envoy ALS, OTLP)
// open their plaintext gRPC server: bind `listen`, serve `service`, take messages up to
// `max_receive_bytes` (larger ones gRPC itself refuses with RESOURCE_EXHAUSTED).
//
// Ownership: the caller owns the returned server and keeps `service` alive longer. Errors:
// Unavailable naming `config_key` (e.g. "ingest.als.listen") and the address when the port cannot
// be bound, also when another gRPC server holds it (SO_REUSEPORT is off). Logs "<what> listening
// on <host>:<port>" once started.

#include <cstdint>
#include <memory>
#include <string_view>

#include "absl/status/statusor.h"
#include "collector/common/host_port.h"

namespace grpc {
class Server;
class Service;
}  // namespace grpc

namespace meshtel::collector {

struct GrpcListener {
  std::unique_ptr<grpc::Server> server;
  uint16_t port = 0;  // the bound port (the chosen one when `listen` asked for port 0)
};

absl::StatusOr<GrpcListener> StartGrpcListener(const common::HostPort& listen,
                                               grpc::Service& service, uint64_t max_receive_bytes,
                                               std::string_view config_key, std::string_view what);

}  // namespace meshtel::collector
