#include "collector/logs/record_text.h"

#include "collector/common/protobuf_wire.h"
#include "collector/logs/json_escape.h"

namespace meshtel::collector {
namespace {

// Repairs a text field read as `value`; `mutable_text` gives it for writing, asked for only when
// it needs repair (a protobuf mutable_*() of an unset field allocates its string).
template <typename MutableText>
size_t Repair(const std::string& value, MutableText&& mutable_text) {
  if (common::ValidUtf8(value)) return 0;
  return ReplaceInvalidUtf8(*mutable_text()) ? 1 : 0;
}

// Repair() of field `field` of `message`.
#define MESHTEL_REPAIR(message, field) \
  Repair((message).field(), [&] { return (message).mutable_##field(); })

size_t RepairIdentity(meshtel::v1::WorkloadIdentity& identity) {
  return MESHTEL_REPAIR(identity, workload) + MESHTEL_REPAIR(identity, namespace_) +
         MESHTEL_REPAIR(identity, app) + MESHTEL_REPAIR(identity, version) +
         MESHTEL_REPAIR(identity, canonical_service) +
         MESHTEL_REPAIR(identity, canonical_revision) + MESHTEL_REPAIR(identity, cluster) +
         MESHTEL_REPAIR(identity, principal);
}

}  // namespace

size_t SanitizeRecordText(meshtel::v1::RequestRecord& record) {
  size_t changed =
      MESHTEL_REPAIR(record, method) + MESHTEL_REPAIR(record, scheme) +
      MESHTEL_REPAIR(record, authority) + MESHTEL_REPAIR(record, path) +
      MESHTEL_REPAIR(record, protocol) + MESHTEL_REPAIR(record, user_agent) +
      MESHTEL_REPAIR(record, forwarded_for) + MESHTEL_REPAIR(record, request_id) +
      MESHTEL_REPAIR(record, response_code_details) + MESHTEL_REPAIR(record, upstream_host) +
      MESHTEL_REPAIR(record, upstream_cluster) + MESHTEL_REPAIR(record, downstream_remote_address) +
      MESHTEL_REPAIR(record, downstream_local_address) +
      MESHTEL_REPAIR(record, upstream_local_address) + MESHTEL_REPAIR(record, route_name);
  if (record.has_source()) changed += RepairIdentity(*record.mutable_source());
  if (record.has_destination()) changed += RepairIdentity(*record.mutable_destination());
  if (record.has_destination_service()) {
    meshtel::v1::ServiceIdentity& service = *record.mutable_destination_service();
    changed += MESHTEL_REPAIR(service, host) + MESHTEL_REPAIR(service, name) +
               MESHTEL_REPAIR(service, namespace_);
  }
  for (meshtel::v1::CapturedHeader& header : *record.mutable_captured_headers()) {
    changed += MESHTEL_REPAIR(header, name) + MESHTEL_REPAIR(header, value);
  }
  for (meshtel::v1::SpanTag& tag : *record.mutable_custom_tags()) {
    changed += MESHTEL_REPAIR(tag, name) + MESHTEL_REPAIR(tag, value);
  }
  return changed;
}

#undef MESHTEL_REPAIR

}  // namespace meshtel::collector
