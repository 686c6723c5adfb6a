#pragma once
// Record text: every text field of a request record made valid UTF-8.
//
// HTTP/1.1 lets a request target and header values carry bytes that are not UTF-8 (obs-text,
// RFC 9110 §5.5), and whoever records the request copies them as they came (path, Host,
// User-Agent, x-forwarded-for, x-request-id, captured headers, header custom tags, peer
// identities): the proxy into its record, Envoy into its gRPC access-log entries. A record's text
// fields are proto3 `string`s: the collector refuses a RecordBatch in which one is not UTF-8 (with
// it every record of the batch), and protobuf refuses such an Envoy ALS message whole. So each
// byte that is not part of a valid UTF-8 sequence is replaced in the record, by U+FFFD as
// everywhere in meshtel (json_escape.h, ReplaceInvalidUtf8): by the proxy before it reports a
// record (the request itself is proxied unchanged), and by the ALS receiver for an entry whose
// text is not UTF-8 (collector/ingest/als_message_decoder.h).
//
// Threading: pure functions over what they are given. Errors: none.

#include <cstddef>
#include <string>

#include "meshtel/v1/record.pb.h"

namespace meshtel::collector {

// Makes every text field of `record` valid UTF-8 but those of received_span and received_log
// (which only the OTLP receiver sets, from messages protobuf checked); returns how many fields it
// changed.
size_t SanitizeRecordText(meshtel::v1::RequestRecord& record);

}  // namespace meshtel::collector
