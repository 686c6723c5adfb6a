#include "proxy/http/record_text.h"

#include <cstdint>

#include "collector/common/protobuf_wire.h"

namespace meshtel::proxy {
namespace {

// The length of the valid UTF-8 sequence at text[at], or 0 when none starts there.
size_t ValidSequenceLength(const std::string& text, size_t at) {
  const auto byte = [&](size_t i) { return static_cast<uint8_t>(text[i]); };
  const uint8_t lead = byte(at);
  if (lead < 0x80) return 1;
  size_t length = 0;
  uint8_t low = 0x80, high = 0xBF;  // the allowed range of the second byte
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    if (lead == 0xE0) low = 0xA0;   // no overlong form
    if (lead == 0xED) high = 0x9F;  // no surrogate
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    if (lead == 0xF0) low = 0x90;   // no overlong form
    if (lead == 0xF4) high = 0x8F;  // nothing above U+10FFFF
  } else {
    return 0;
  }
  if (at + length > text.size()) return 0;
  if (byte(at + 1) < low || byte(at + 1) > high) return 0;
  for (size_t i = 2; i < length; ++i) {
    if (byte(at + i) < 0x80 || byte(at + i) > 0xBF) return 0;
  }
  return length;
}

size_t Sanitize(std::string* text) { return SanitizeUtf8(*text) ? 1 : 0; }

size_t SanitizeIdentity(meshtel::v1::WorkloadIdentity& identity) {
  return Sanitize(identity.mutable_workload()) + Sanitize(identity.mutable_namespace_()) +
         Sanitize(identity.mutable_app()) + Sanitize(identity.mutable_version()) +
         Sanitize(identity.mutable_canonical_service()) +
         Sanitize(identity.mutable_canonical_revision()) + Sanitize(identity.mutable_cluster()) +
         Sanitize(identity.mutable_principal());
}

}  // namespace

bool SanitizeUtf8(std::string& text) {
  if (common::ValidUtf8(text)) return false;
  for (size_t at = 0; at < text.size();) {
    const size_t length = ValidSequenceLength(text, at);
    if (length == 0) {
      text[at] = '!';
      ++at;
    } else {
      at += length;
    }
  }
  return true;
}

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
