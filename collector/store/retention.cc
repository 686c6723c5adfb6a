#include "collector/store/retention.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

namespace meshtel::collector {
namespace {

constexpr RecordFamily kFamilies[] = {RecordFamily::kLogs, RecordFamily::kSpans};
// Records counted per deletion at most (a deletion larger than this counts this many).
constexpr uint64_t kCountCap = 100'000'000;
// How often the thread looks at the bytes appended.
constexpr absl::Duration kPoll = absl::Milliseconds(20);

}  // namespace

Retention::Retention(RecordStore& store, const StoreConfig& config,
                     std::vector<RetentionWatch> watched, prometheus::Registry& registry)
    : store_(store),
      config_(config),
      watched_(std::move(watched)),
      dropped_(prometheus::BuildCounter()
                   .Name("meshtel_store_dropped_total")
                   .Help("Records retention deleted before an exporter delivered them, per "
                         "exporter and limit (max_age, max_bytes).")
                   .Register(registry)),
      deleted_(prometheus::BuildCounter()
                   .Name("meshtel_store_deleted_total")
                   .Help("Records retention deleted, per family and limit.")
                   .Register(registry)) {}

Retention::~Retention() { Stop(); }

void Retention::Start() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = false;
  }
  thread_ = std::thread([this] { Loop(); });
}

void Retention::Stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wakeup_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Retention::Loop() {
  const uint64_t bytes_step = std::max<uint64_t>(config_.max_bytes / 20, 1);
  uint64_t bytes_at_last_run = store_.bytes_appended();
  absl::Time last_run = absl::InfinitePast();
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stopping_) {
    const absl::Time now = absl::Now();
    const uint64_t appended = store_.bytes_appended();
    store_.RefreshDiskBytes();
    if (now - last_run >= config_.retention_interval ||
        appended - bytes_at_last_run >= bytes_step ||
        store_.DiskBytes() > store_.retainable_bytes() / 20 * 17) {
      last_run = now;
      bytes_at_last_run = appended;
      lock.unlock();
      if (absl::StatusOr<uint64_t> deleted = RunOnce(now); !deleted.ok()) {
        spdlog::error("retention: {}", deleted.status().ToString());
      }
      lock.lock();
      continue;
    }
    wakeup_.wait_for(lock, absl::ToChronoNanoseconds(kPoll), [this] { return stopping_; });
  }
}

absl::StatusOr<uint64_t> Retention::DeleteBefore(RecordFamily family, uint64_t time_unix_nano,
                                                 const std::string& reason) {
  const StoreKey end{time_unix_nano, 0};
  absl::StatusOr<uint64_t> count = store_.Count(family, StoreKey{}, end, kCountCap);
  if (!count.ok()) return count.status();
  if (*count == 0) return 0;
  for (const RetentionWatch& watch : watched_) {
    if (watch.family != family) continue;
    absl::StatusOr<StoreKey> cursor = store_.LoadCursor(watch.exporter);
    if (!cursor.ok()) return cursor.status();
    absl::StatusOr<uint64_t> undelivered = store_.Count(family, *cursor, end, kCountCap);
    if (!undelivered.ok()) return undelivered.status();
    if (*undelivered > 0) {
      dropped_.Add({{"exporter", watch.exporter}, {"reason", reason}})
          .Increment(static_cast<double>(*undelivered));
      spdlog::warn("retention ({}): {} records of {} deleted before exporter {} delivered them",
                   reason, *undelivered, RecordFamilyName(family), watch.exporter);
    }
  }
  if (absl::Status status = store_.DeleteBefore(family, time_unix_nano); !status.ok()) {
    return status;
  }
  deleted_.Add({{"family", std::string(RecordFamilyName(family))}, {"reason", reason}})
      .Increment(static_cast<double>(*count));
  return *count;
}

absl::StatusOr<uint64_t> Retention::RunOnce(absl::Time now) {
  uint64_t deleted = 0;
  // Age.
  const int64_t oldest_kept = absl::ToUnixNanos(now - config_.max_age);
  if (oldest_kept > 0) {
    for (RecordFamily family : kFamilies) {
      const auto span = store_.TimeSpan(family);
      if (!span || span->first >= static_cast<uint64_t>(oldest_kept)) continue;
      absl::StatusOr<uint64_t> count =
          DeleteBefore(family, static_cast<uint64_t>(oldest_kept), "max_age");
      if (!count.ok()) return count.status();
      deleted += *count;
    }
  }
  // Size: past 85% of the retainable bytes, delete the oldest records (of whichever family holds
  // the oldest) until the directory is down to 70%. Each step removes the estimated excess, so a
  // few steps suffice; the bound keeps a bad estimate from looping.
  const uint64_t high = store_.retainable_bytes() / 20 * 17;
  const uint64_t low = store_.retainable_bytes() / 10 * 7;
  if (store_.DiskBytes() > high) {
    // The write-ahead log is not records: move what it holds into table files first, so the
    // excess below is the records' and no more of them are deleted than the limit needs.
    if (absl::Status flushed = store_.FlushRecords(); !flushed.ok()) return flushed;
  }
  // At most half of a family's records per step and two steps per run: when the directory's size
  // is not the records' (files RocksDB has yet to drop), deleting more would not help, and the
  // store's refusal of new batches already holds the limit until the next run.
  for (int step = 0; step < 2; ++step) {
    const uint64_t disk = store_.DiskBytes();
    if (disk <= (step == 0 ? high : low)) break;
    uint64_t excess = disk - low;
    // The family with the oldest record gives up its oldest `excess` bytes.
    std::optional<std::pair<uint64_t, uint64_t>> oldest_span;
    RecordFamily oldest_family = RecordFamily::kLogs;
    for (RecordFamily family : kFamilies) {
      const auto span = store_.TimeSpan(family);
      if (span && (!oldest_span || span->first < oldest_span->first)) {
        oldest_span = span;
        oldest_family = family;
      }
    }
    if (!oldest_span) break;  // nothing left to delete: the rest is logs and metadata
    // The smallest storage time whose older records take at least `excess` bytes, by bisection.
    excess =
        std::min(excess, store_.ApproximateBytesBefore(oldest_family, oldest_span->second + 1) / 2);
    uint64_t lo = oldest_span->first;
    uint64_t hi = oldest_span->second + 1;
    while (lo + 1 < hi) {
      const uint64_t mid = lo + (hi - lo) / 2;
      if (store_.ApproximateBytesBefore(oldest_family, mid) >= excess) {
        hi = mid;
      } else {
        lo = mid;
      }
    }
    absl::StatusOr<uint64_t> count = DeleteBefore(oldest_family, hi, "max_bytes");
    if (!count.ok()) return count.status();
    deleted += *count;
    if (*count == 0) break;
  }
  return deleted;
}

}  // namespace meshtel::collector
