#include "exporters/common/measured_entries.h"

#include <algorithm>
#include <functional>
#include <string_view>

#include "collector/store/record_store.h"

namespace meshtel::exporters {

uint64_t RecordFingerprint(const collector::StoredRecord& stored, uint64_t time_ns) {
  const meshtel::v1::RequestRecord& r = stored.record;
  uint64_t hash = time_ns * 31 + std::hash<std::string_view>{}(r.path());
  if (r.has_received_log()) {
    hash = hash * 31 + std::hash<std::string_view>{}(r.received_log().body());
  }
  hash = hash * 31 + std::hash<std::string_view>{}(r.request_id());
  hash = hash * 31 + std::hash<std::string_view>{}(r.destination().workload());
  hash = hash * 31 + r.response_code();
  hash = hash * 31 + r.duration_ns();
  hash = hash * 31 + r.request_bytes();
  return hash * 31 + r.response_bytes();
}

const MeasuredEntries::Entry* MeasuredEntries::Find(const collector::StoreKey& key,
                                                    uint64_t fingerprint) const {
  const auto it = std::lower_bound(
      entries_.begin(), entries_.end(), key,
      [](const Entry& entry, const collector::StoreKey& wanted) { return entry.key < wanted; });
  if (it == entries_.end() || it->key != key || it->fingerprint != fingerprint) return nullptr;
  return &*it;
}

}  // namespace meshtel::exporters
