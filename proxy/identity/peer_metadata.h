#pragma once
// Workload identity exchange between the two proxies of a hop, in the manner of Istio's
// x-envoy-peer-metadata: the client-side proxy puts its identity on the request, the server-side
// proxy puts its identity on the response, and each strips the other's header before the app or
// the downstream sees it. The value is base64 (standard, padded) of a serialized
// meshtel.v1.WorkloadIdentity; the -id header carries "<workload>.<namespace>" for logs.
// Pure functions; safe from any thread.

#include <string>
#include <string_view>

#include "meshtel/v1/record.pb.h"
#include "proxy/config/proxy_config.h"

namespace meshtel::proxy {

inline constexpr char kPeerMetadataHeader[] = "x-envoy-peer-metadata";
inline constexpr char kPeerMetadataIdHeader[] = "x-envoy-peer-metadata-id";

meshtel::v1::WorkloadIdentity IdentityFromConfig(const WorkloadConfig& workload);
// Service identity from a host such as "reviews.default.svc.cluster.local": name "reviews",
// namespace "default". A host without dots yields name = host and an empty namespace.
meshtel::v1::ServiceIdentity ServiceFromHost(std::string_view host);

std::string EncodePeerMetadata(const meshtel::v1::WorkloadIdentity& identity);
// False (and `identity` unspecified) when the value is not valid base64 of a WorkloadIdentity.
bool DecodePeerMetadata(std::string_view value, meshtel::v1::WorkloadIdentity& identity);

}  // namespace meshtel::proxy
