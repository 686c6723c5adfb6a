#include "collector/metrics/istio_labels.h"

#include "collector/common/response_flag_codes.h"

#include <charconv>

namespace meshtel::collector {
namespace {

constexpr std::string_view kUnknown = "unknown";
constexpr std::string_view kLatest = "latest";

std::string_view OrUnknown(const std::string& value) {
  return value.empty() ? kUnknown : std::string_view(value);
}

std::string_view CanonicalService(const meshtel::v1::WorkloadIdentity& identity) {
  if (!identity.canonical_service().empty()) return identity.canonical_service();
  if (!identity.app().empty()) return identity.app();
  return OrUnknown(identity.workload());
}

std::string_view CanonicalRevision(const meshtel::v1::WorkloadIdentity& identity) {
  if (!identity.canonical_revision().empty()) return identity.canonical_revision();
  if (!identity.version().empty()) return identity.version();
  return kLatest;
}

std::string_view Reporter(meshtel::v1::Reporter reporter) {
  switch (reporter) {
    case meshtel::v1::REPORTER_SOURCE:
      return "source";
    case meshtel::v1::REPORTER_DESTINATION:
      return "destination";
    default:
      return kUnknown;
  }
}

std::string_view RequestProtocol(meshtel::v1::RequestProtocol protocol) {
  switch (protocol) {
    case meshtel::v1::REQUEST_PROTOCOL_GRPC:
      return "grpc";
    case meshtel::v1::REQUEST_PROTOCOL_TCP:
      return "tcp";
    default:
      return "http";
  }
}

}  // namespace

void AppendResponseFlags(uint64_t flags, std::string& out) {
  common::AppendResponseFlagCodes(out, flags);
}

std::array<std::string_view, kIstioRequestLabelCount> IstioRequestLabelValues(
    const meshtel::v1::RequestRecord& record, IstioLabelScratch& scratch) {
  const auto& source = record.source();
  const auto& destination = record.destination();
  const auto& service = record.destination_service();
  const bool is_source = record.reporter() == meshtel::v1::REPORTER_SOURCE;

  scratch.response_code = std::to_string(record.response_code());
  scratch.grpc_status.clear();
  if (record.has_grpc_status()) scratch.grpc_status = std::to_string(record.grpc_status());
  scratch.response_flags.clear();
  AppendResponseFlags(record.response_flags(), scratch.response_flags);

  std::string_view security_policy = kUnknown;
  if (!is_source) security_policy = record.mutual_tls() ? "mutual_tls" : "none";

  std::string_view service_host = service.host();
  if (service_host.empty()) service_host = record.authority();
  if (service_host.empty()) service_host = kUnknown;

  return {
      Reporter(record.reporter()),
      OrUnknown(source.workload()),
      CanonicalService(source),
      CanonicalRevision(source),
      OrUnknown(source.namespace_()),
      OrUnknown(source.principal()),
      OrUnknown(source.app()),
      OrUnknown(source.version()),
      OrUnknown(source.cluster()),
      OrUnknown(destination.workload()),
      OrUnknown(destination.namespace_()),
      OrUnknown(destination.principal()),
      OrUnknown(destination.app()),
      OrUnknown(destination.version()),
      service_host,
      CanonicalService(destination),
      CanonicalRevision(destination),
      service.name().empty() ? service_host : std::string_view(service.name()),
      OrUnknown(service.namespace_()),
      OrUnknown(destination.cluster()),
      RequestProtocol(record.request_protocol()),
      scratch.response_code,
      scratch.grpc_status,
      scratch.response_flags,
      security_policy,
  };
}

}  // namespace meshtel::collector
