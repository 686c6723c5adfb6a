#include "collector/ingest/grpc_listener.h"

#include <algorithm>
#include <limits>
#include <string>

#include "absl/strings/str_cat.h"
#include "grpcpp/grpcpp.h"
#include "spdlog/spdlog.h"

namespace meshtel::collector {

absl::StatusOr<GrpcListener> StartGrpcListener(const common::HostPort& listen,
                                               grpc::Service& service, uint64_t max_receive_bytes,
                                               std::string_view config_key, std::string_view what) {
  return StartGrpcListener(listen, std::vector<grpc::Service*>{&service}, max_receive_bytes,
                           config_key, what);
}

absl::StatusOr<GrpcListener> StartGrpcListener(const common::HostPort& listen,
                                               const std::vector<grpc::Service*>& services,
                                               uint64_t max_receive_bytes,
                                               std::string_view config_key, std::string_view what) {
  grpc::ServerBuilder builder;
  // gRPC sets SO_REUSEPORT by default: a second collector (or two receivers configured on one
  // address) would then bind the same port without an error and the kernel would split the
  // connections between them. A port already in use must fail the start instead.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  int selected_port = 0;
  builder.AddListeningPort(listen.ToString(), grpc::InsecureServerCredentials(), &selected_port);
  for (grpc::Service* service : services) builder.RegisterService(service);
  builder.SetMaxReceiveMessageSize(
      static_cast<int>(std::min<uint64_t>(max_receive_bytes, std::numeric_limits<int>::max())));
  GrpcListener listener;
  listener.server = builder.BuildAndStart();
  if (listener.server == nullptr || selected_port == 0) {
    return absl::UnavailableError(
        absl::StrCat(std::string(config_key), ": cannot listen on ", listen.ToString()));
  }
  listener.port = static_cast<uint16_t>(selected_port);
  spdlog::info("{} listening on {}:{}", what, listen.host, listener.port);
  return listener;
}

}  // namespace meshtel::collector
