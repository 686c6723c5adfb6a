#pragma once
// Record text: every text field of a request record made valid UTF-8 before it is reported.
//
// HTTP/1.1 lets a request target and header values carry bytes that are not UTF-8 (obs-text,
// RFC 9110 §5.5), and the proxy copies them into its record as they came (path, Host, User-Agent,
// x-forwarded-for, x-request-id, captured headers, header custom tags, peer identities). A
// record's text fields are proto3 `string`s: the collector refuses a RecordBatch in which one is
// not UTF-8, and with it every record of the batch. So, as Envoy sanitizes the strings it sends to
// gRPC services, each byte that is not part of a valid UTF-8 sequence is replaced in the record,
// by U+FFFD as everywhere in meshtel (collector/logs/json_escape.h, ReplaceInvalidUtf8); the
// request itself is proxied unchanged.
//
// Threading: pure functions over what they are given. Errors: none.

#include <cstddef>
#include <string>

#include "meshtel/v1/record.pb.h"

namespace meshtel::proxy {

// Makes every text field of `record` that the proxy fills valid UTF-8 (not received_span and
// received_log, which only the collector sets); returns how many fields it changed.
size_t SanitizeRecordText(meshtel::v1::RequestRecord& record);

}  // namespace meshtel::proxy
