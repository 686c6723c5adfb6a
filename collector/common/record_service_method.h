#pragma once
// The gRPC method of meshtel.v1.RecordService (proto/meshtel/v1/record.proto), named once.
// Both ends speak it with raw ByteBuffers: the proxy keeps unacknowledged batches serialized and
// resends them without re-encoding; the collector decodes them itself so that a malformed or
// oversized batch gets its own answer on the stream instead of ending it.

namespace meshtel::common {

inline constexpr char kStreamRecordsMethod[] = "/meshtel.v1.RecordService/StreamRecords";

}  // namespace meshtel::common
