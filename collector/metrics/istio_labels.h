#pragma once
// Istio's standard label set for HTTP/gRPC request metrics, derived from a RequestRecord.
//
// The names, their order and the `unknown`/`latest` defaults follow Istio's istio_stats filter
// (wire-facts §8.2): every series carries all 25 labels, so label sets stay stable.
// Pure functions; safe from any thread.

#include <array>
#include <cstddef>
#include <string>
#include <string_view>

#include "meshtel/v1/record.pb.h"

namespace meshtel::collector {

inline constexpr size_t kIstioRequestLabelCount = 25;

inline constexpr std::array<std::string_view, kIstioRequestLabelCount> kIstioRequestLabelNames = {
    "reporter",
    "source_workload",
    "source_canonical_service",
    "source_canonical_revision",
    "source_workload_namespace",
    "source_principal",
    "source_app",
    "source_version",
    "source_cluster",
    "destination_workload",
    "destination_workload_namespace",
    "destination_principal",
    "destination_app",
    "destination_version",
    "destination_service",
    "destination_canonical_service",
    "destination_canonical_revision",
    "destination_service_name",
    "destination_service_namespace",
    "destination_cluster",
    "request_protocol",
    "response_code",
    "grpc_response_status",
    "response_flags",
    "connection_security_policy",
};

// Istio's gRPC message counters (istio_request_messages_total, istio_response_messages_total)
// carry only `reporter` and the source_*/destination_* labels: the request labels above without
// request_protocol, response_code, grpc_response_status, response_flags and
// connection_security_policy (wire-facts §8.2). Indexes into kIstioRequestLabelNames, in order.
inline constexpr size_t kIstioMessageLabelCount = 20;
inline constexpr std::array<size_t, kIstioMessageLabelCount> kIstioMessageLabelIndexes = {
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19};
inline constexpr std::array<std::string_view, kIstioMessageLabelCount> kIstioMessageLabelNames =
    [] {
      std::array<std::string_view, kIstioMessageLabelCount> names{};
      for (size_t i = 0; i < kIstioMessageLabelCount; ++i) {
        names[i] = kIstioRequestLabelNames[kIstioMessageLabelIndexes[i]];
      }
      return names;
    }();

// The label values of one record, in kIstioRequestLabelNames order. The views point into
// `record` or into static strings, except response_code, grpc_response_status and
// response_flags, which point into `scratch` (reused across calls to avoid allocation).
struct IstioLabelScratch {
  std::string response_code;
  std::string grpc_status;
  std::string response_flags;
};
std::array<std::string_view, kIstioRequestLabelCount> IstioRequestLabelValues(
    const meshtel::v1::RequestRecord& record, IstioLabelScratch& scratch);

// Envoy's short codes for a RequestRecord.response_flags bit set, joined by ',' ("-" if none).
void AppendResponseFlags(uint64_t flags, std::string& out);

}  // namespace meshtel::collector
