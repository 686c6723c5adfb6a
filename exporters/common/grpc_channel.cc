#include "exporters/common/grpc_channel.h"

// Tested by: tests/exporters/jaeger/jaeger_sender_test.cc (TLS channels to a TLS receiver)

#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/channel_arguments.h"

namespace meshtel::exporters {

std::shared_ptr<grpc::Channel> CreateExporterChannel(const std::string& target,
                                                     const common::TlsConfig& tls) {
  if (!tls.enabled) return grpc::CreateChannel(target, grpc::InsecureChannelCredentials());
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = tls.ca_pem;  // empty: gRPC's default roots
  options.pem_cert_chain = tls.cert_pem;
  options.pem_private_key = tls.key_pem;
  grpc::ChannelArguments arguments;
  if (!tls.server_name.empty()) {
    arguments.SetSslTargetNameOverride(tls.server_name);
  }
  return grpc::CreateCustomChannel(target, grpc::SslCredentials(options), arguments);
}

}  // namespace meshtel::exporters
