#pragma once
// InstanceProgress: what the collector has durably stored of one proxy instance's RecordBatch
// stream — the base of deduplication by (instance, sequence) across collector restarts.
// A plain value type.

#include <cstdint>

namespace meshtel::collector {

struct InstanceProgress {
  uint64_t highest_sequence = 0;       // the highest RecordBatch sequence stored
  uint64_t dropped_records_total = 0;  // the proxy's cumulative drop count, as last reported
};

}  // namespace meshtel::collector
