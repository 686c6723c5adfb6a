#pragma once
// The channel of a gRPC exporter (Jaeger, OTLP over gRPC): plaintext HTTP/2, or TLS when the
// exporter's `tls:` block enables it. The block is read by common::ReadTlsConfig()
// (collector/common/tls_config.h: keys, defaults, errors), which reads the files when the
// configuration loads.
// The server's certificate is always verified (there is no switch to skip it); a verification
// failure is a failed connection, which the exporter retries (UNAVAILABLE) with the gRPC error
// in its detail and last_error.
//
// Threading: pure function. The channel it creates is thread-safe (gRPC's).

#include <memory>
#include <string>

#include "collector/common/tls_config.h"
#include "grpcpp/channel.h"

namespace meshtel::exporters {

// A channel to `target` ("host:port"): plaintext, or TLS as `tls` says.
std::shared_ptr<grpc::Channel> CreateExporterChannel(const std::string& target,
                                                     const common::TlsConfig& tls);

}  // namespace meshtel::exporters
