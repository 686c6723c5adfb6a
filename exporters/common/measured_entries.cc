#include "exporters/common/measured_entries.h"

#include <algorithm>

namespace meshtel::exporters {

const MeasuredEntries::Entry* MeasuredEntries::Find(const collector::StoreKey& key,
                                                    uint64_t fingerprint) const {
  const auto it = std::lower_bound(
      entries_.begin(), entries_.end(), key,
      [](const Entry& entry, const collector::StoreKey& wanted) { return entry.key < wanted; });
  if (it == entries_.end() || it->key != key || it->fingerprint != fingerprint) return nullptr;
  return &*it;
}

}  // namespace meshtel::exporters
