#include "proxy/identity/peer_metadata.h"

#include "absl/strings/escaping.h"

namespace meshtel::proxy {

meshtel::v1::WorkloadIdentity IdentityFromConfig(const WorkloadConfig& workload) {
  meshtel::v1::WorkloadIdentity identity;
  identity.set_workload(workload.name);
  identity.set_namespace_(workload.namespace_name);
  identity.set_app(workload.app);
  identity.set_version(workload.version);
  identity.set_canonical_service(workload.canonical_service);
  identity.set_canonical_revision(workload.canonical_revision);
  identity.set_cluster(workload.cluster);
  identity.set_principal(workload.principal);
  return identity;
}

meshtel::v1::ServiceIdentity ServiceFromHost(std::string_view host) {
  meshtel::v1::ServiceIdentity service;
  service.set_host(std::string(host));
  const size_t first_dot = host.find('.');
  service.set_name(std::string(host.substr(0, first_dot)));
  if (first_dot != std::string_view::npos) {
    const std::string_view rest = host.substr(first_dot + 1);
    service.set_namespace_(std::string(rest.substr(0, rest.find('.'))));
  }
  return service;
}

std::string EncodePeerMetadata(const meshtel::v1::WorkloadIdentity& identity) {
  std::string encoded;
  absl::Base64Escape(identity.SerializeAsString(), &encoded);
  return encoded;
}

bool DecodePeerMetadata(std::string_view value, meshtel::v1::WorkloadIdentity& identity) {
  // Decoded into a buffer that stays with the thread: the request path calls this per request.
  thread_local std::string bytes;
  if (!absl::Base64Unescape(absl::string_view(value.data(), value.size()), &bytes)) return false;
  return identity.ParseFromString(bytes);
}

}  // namespace meshtel::proxy
