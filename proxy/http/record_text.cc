#include "proxy/http/record_text.h"

#include "collector/logs/json_escape.h"

namespace meshtel::proxy {
namespace {

size_t Sanitize(std::string* text) { return collector::ReplaceInvalidUtf8(*text) ? 1 : 0; }

size_t SanitizeIdentity(meshtel::v1::WorkloadIdentity& identity) {
  return Sanitize(identity.mutable_workload()) + Sanitize(identity.mutable_namespace_()) +
         Sanitize(identity.mutable_app()) + Sanitize(identity.mutable_version()) +
         Sanitize(identity.mutable_canonical_service()) +
         Sanitize(identity.mutable_canonical_revision()) + Sanitize(identity.mutable_cluster()) +
         Sanitize(identity.mutable_principal());
}

}  // namespace

size_t SanitizeRecordText(meshtel::v1::RequestRecord& record) {
  size_t changed =
      Sanitize(record.mutable_method()) + Sanitize(record.mutable_scheme()) +
      Sanitize(record.mutable_authority()) + Sanitize(record.mutable_path()) +
      Sanitize(record.mutable_protocol()) + Sanitize(record.mutable_user_agent()) +
      Sanitize(record.mutable_forwarded_for()) + Sanitize(record.mutable_request_id()) +
      Sanitize(record.mutable_response_code_details()) + Sanitize(record.mutable_upstream_host()) +
      Sanitize(record.mutable_upstream_cluster()) +
      Sanitize(record.mutable_downstream_remote_address()) +
      Sanitize(record.mutable_downstream_local_address()) +
      Sanitize(record.mutable_upstream_local_address()) + Sanitize(record.mutable_route_name());
  if (record.has_source()) changed += SanitizeIdentity(*record.mutable_source());
  if (record.has_destination()) changed += SanitizeIdentity(*record.mutable_destination());
  if (record.has_destination_service()) {
    meshtel::v1::ServiceIdentity& service = *record.mutable_destination_service();
    changed += Sanitize(service.mutable_host()) + Sanitize(service.mutable_name()) +
               Sanitize(service.mutable_namespace_());
  }
  for (meshtel::v1::CapturedHeader& header : *record.mutable_captured_headers()) {
    changed += Sanitize(header.mutable_name()) + Sanitize(header.mutable_value());
  }
  for (meshtel::v1::SpanTag& tag : *record.mutable_custom_tags()) {
    changed += Sanitize(tag.mutable_name()) + Sanitize(tag.mutable_value());
  }
  return changed;
}

}  // namespace meshtel::proxy
