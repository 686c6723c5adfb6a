#pragma once
// StartGrpcListener: the one way the collector's gRPC receivers (proxy records, Envoy ALS, OTLP)
// open their plaintext gRPC server: bind `listen`, serve `service` (or several services on the one
// port, e.g. RecordService and PolicyService on ingest.listen), take messages up to
// `max_receive_bytes` (larger ones gRPC itself refuses with RESOURCE_EXHAUSTED).
//
// Ownership: the caller owns the returned server and keeps the services alive longer. Errors:
// Unavailable naming `config_key` (e.g. "ingest.als.listen") and the address when the port cannot
// be bound, also when another gRPC server holds it (SO_REUSEPORT is off). Logs "<what> listening
// on <host>:<port>" once started.

#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

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
// The same with several services (sync and callback ones may be mixed); at least one.
absl::StatusOr<GrpcListener> StartGrpcListener(const common::HostPort& listen,
                                               const std::vector<grpc::Service*>& services,
                                               uint64_t max_receive_bytes,
                                               std::string_view config_key, std::string_view what);

}  // namespace meshtel::collector
