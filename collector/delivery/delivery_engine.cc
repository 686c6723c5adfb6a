#include "collector/delivery/delivery_engine.h"

#include <algorithm>
#include <array>
#include <condition_variable>
#include <future>
#include <mutex>
#include <optional>
#include <random>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "collector/delivery/batch_delivery.h"
#include "spdlog/spdlog.h"

namespace meshtel::collector {
namespace {

constexpr StoreKey kEndOfStore{~uint64_t{0}, ~uint64_t{0}};
// How often an idle exporter looks for new records.
constexpr absl::Duration kIdlePoll = absl::Milliseconds(50);
// Lag is counted exactly up to this many records (a longer backlog reads as this number).
constexpr uint64_t kLagCountCap = 10'000'000;
constexpr absl::Duration kLagInterval = absl::Seconds(1);
// Lag is counted afresh this often; in between only the records stored since the last count are
// counted (what retention deleted before delivery is seen at the next fresh count).
constexpr absl::Duration kLagRecountInterval = absl::Minutes(5);

uint64_t NowUnixNano() { return static_cast<uint64_t>(absl::ToUnixNanos(absl::Now())); }

}  // namespace

struct DeliveryEngine::Runner {
  DeliveryTarget target;
  std::thread thread;
  std::mt19937_64 random{std::random_device{}()};
  prometheus::Counter* delivered = nullptr;
  prometheus::Counter* rejected = nullptr;
  prometheus::Counter* filtered = nullptr;
  prometheus::Counter* send_ok = nullptr;
  prometheus::Counter* send_retryable = nullptr;
  prometheus::Counter* send_permanent = nullptr;
  prometheus::Gauge* retrying = nullptr;
  prometheus::Gauge* lag_records = nullptr;
  prometheus::Gauge* lag_seconds = nullptr;
  prometheus::Counter* repaired = nullptr;
  uint64_t repaired_counted = 0;  // the encoder's repaired_entries() already in `repaired`
  absl::Time last_lag_update = absl::InfinitePast();
  // The last lag count: `lag_count` records after the cursor up to `lag_until` (the last key
  // counted) when `lag_resolved` records had been resolved. lag_count_at is when it was counted
  // afresh (InfinitePast: the next update counts afresh).
  uint64_t lag_count = 0;
  StoreKey lag_until;
  uint64_t lag_resolved = 0;
  absl::Time lag_count_at = absl::InfinitePast();

  mutable std::mutex mutex;  // guards status
  DeliveryStatus status;
};

DeliveryEngine::DeliveryEngine(RecordStore& store, prometheus::Registry& registry)
    : store_(store),
      records_total_(prometheus::BuildCounter()
                         .Name("meshtel_exporter_records_total")
                         .Help("Records resolved per exporter: delivered; rejected by the backend "
                               "or the exporter and set aside as dead letters; or filtered (not "
                               "of a kind the exporter delivers, e.g. a received span for a log "
                               "exporter).")
                         .Register(registry)),
      send_total_(prometheus::BuildCounter()
                      .Name("meshtel_exporter_send_total")
                      .Help("Payloads sent per exporter, by the backend's verdict.")
                      .Register(registry)),
      retrying_(prometheus::BuildGauge()
                    .Name("meshtel_exporter_records_retrying")
                    .Help("Records in a payload the exporter is retrying now.")
                    .Register(registry)),
      lag_records_(prometheus::BuildGauge()
                       .Name("meshtel_exporter_lag_records")
                       .Help("Stored records the exporter has not resolved yet (counted up to "
                             "10 million).")
                       .Register(registry)),
      lag_seconds_(prometheus::BuildGauge()
                       .Name("meshtel_exporter_lag_seconds")
                       .Help("Age of the oldest stored record the exporter has not resolved.")
                       .Register(registry)),
      repaired_total_(prometheus::BuildCounter()
                          .Name("meshtel_exporter_entries_repaired_total")
                          .Help("Entries the exporter's encoder changed so that the backend takes "
                                "them (invalid UTF-8 replaced by U+FFFD for Loki).")
                          .Register(registry)) {}

DeliveryEngine::~DeliveryEngine() { Stop(); }

absl::Status DeliveryEngine::Start(std::vector<DeliveryTarget> targets) {
  std::vector<std::unique_ptr<Runner>> runners;
  for (DeliveryTarget& target : targets) {
    const std::string& name = target.exporter.name;
    for (const auto& other : runners) {
      if (other->target.exporter.name == name) {
        return absl::InvalidArgumentError(absl::StrCat("two exporters are named '", name, "'"));
      }
    }
    absl::StatusOr<StoreKey> cursor = store_.LoadCursor(name);
    if (!cursor.ok()) return cursor.status();
    auto runner = std::make_unique<Runner>();
    runner->status.name = name;
    runner->status.type = target.exporter.type;
    runner->status.cursor = *cursor;
    runner->delivered = &records_total_.Add({{"exporter", name}, {"outcome", "delivered"}});
    runner->rejected = &records_total_.Add({{"exporter", name}, {"outcome", "rejected"}});
    runner->filtered = &records_total_.Add({{"exporter", name}, {"outcome", "filtered"}});
    runner->send_ok = &send_total_.Add({{"exporter", name}, {"verdict", "ok"}});
    runner->send_retryable = &send_total_.Add({{"exporter", name}, {"verdict", "retryable"}});
    runner->send_permanent = &send_total_.Add({{"exporter", name}, {"verdict", "permanent"}});
    runner->retrying = &retrying_.Add({{"exporter", name}});
    runner->lag_records = &lag_records_.Add({{"exporter", name}});
    runner->lag_seconds = &lag_seconds_.Add({{"exporter", name}});
    runner->repaired = &repaired_total_.Add({{"exporter", name}});
    runner->target = std::move(target);
    runners.push_back(std::move(runner));
  }
  stopping_.store(false);
  for (auto& runner : runners) {
    spdlog::info("exporter {} ({}) starts after {}", runner->status.name, runner->status.type,
                 runner->status.cursor.ToString());
    Runner* raw = runner.get();
    runner->thread = std::thread([this, raw] { Run(*raw); });
    runners_.push_back(std::move(runner));
  }
  return absl::OkStatus();
}

void DeliveryEngine::Stop() {
  {
    std::lock_guard<std::mutex> lock(sleep_mutex_);
    stopping_.store(true);
  }
  sleep_wakeup_.notify_all();
  for (auto& runner : runners_) {
    if (runner->thread.joinable()) runner->thread.join();
  }
}

std::vector<DeliveryStatus> DeliveryEngine::statuses() const {
  std::vector<DeliveryStatus> result;
  for (const auto& runner : runners_) {
    std::lock_guard<std::mutex> lock(runner->mutex);
    result.push_back(runner->status);
  }
  return result;
}

bool DeliveryEngine::Sleep(absl::Duration duration) {
  std::unique_lock<std::mutex> lock(sleep_mutex_);
  sleep_wakeup_.wait_for(lock, absl::ToChronoNanoseconds(duration),
                         [this] { return stopping_.load(); });
  return !stopping_.load();
}

void DeliveryEngine::UpdateLag(Runner& runner) {
  const absl::Time now = absl::Now();
  if (now - runner.last_lag_update < kLagInterval) return;
  runner.last_lag_update = now;
  StoreKey cursor;
  uint64_t resolved = 0;
  {
    std::lock_guard<std::mutex> lock(runner.mutex);
    cursor = runner.status.cursor;
    resolved = runner.status.delivered + runner.status.rejected + runner.status.filtered;
  }
  const RecordFamily family = runner.target.exporter.family;
  // Records after the cursor = those counted last time, plus those stored since, less those
  // resolved since (counting them all each second would read the whole backlog each second).
  absl::StatusOr<uint64_t> count;
  const uint64_t resolved_since = resolved - runner.lag_resolved;
  if (now - runner.lag_count_at < kLagRecountInterval && resolved_since <= runner.lag_count) {
    StoreKey until;
    absl::StatusOr<uint64_t> added =
        store_.Count(family, runner.lag_until, kEndOfStore, kLagCountCap, &until);
    if (added.ok()) {
      count = std::min(runner.lag_count - resolved_since + *added, kLagCountCap);
      runner.lag_count = *count;
      runner.lag_until = until;
      runner.lag_resolved = resolved;
      // A capped count is not exact: count afresh next time.
      if (*count >= kLagCountCap) runner.lag_count_at = absl::InfinitePast();
    } else {
      count = added.status();
    }
  } else {
    StoreKey until;
    count = store_.Count(family, cursor, kEndOfStore, kLagCountCap, &until);
    if (count.ok() && *count < kLagCountCap) {
      runner.lag_count = *count;
      runner.lag_until = until;
      runner.lag_resolved = resolved;
      runner.lag_count_at = now;
    }
  }
  absl::StatusOr<std::vector<StoredRecord>> oldest = store_.Read(family, cursor, kEndOfStore, 1);
  double seconds = 0;
  if (oldest.ok() && !oldest->empty()) {
    const uint64_t stored_at = oldest->front().key.time_unix_nano;
    const uint64_t now_ns = NowUnixNano();
    seconds = now_ns > stored_at ? static_cast<double>(now_ns - stored_at) / 1e9 : 0;
  }
  runner.lag_records->Set(count.ok() ? static_cast<double>(*count) : 0);
  runner.lag_seconds->Set(seconds);
  std::lock_guard<std::mutex> lock(runner.mutex);
  if (count.ok()) runner.status.lag_records = *count;
  runner.status.lag_seconds = seconds;
}

void DeliveryEngine::SetAside(Runner& runner, std::span<const StoredRecord> records,
                              const std::string& reason, bool maybe_delivered) {
  for (const StoredRecord& stored : records) {
    if (absl::Status status =
            store_.PutDeadLetter(runner.status.name, stored, reason, maybe_delivered);
        !status.ok()) {
      // The record stays in its family; it is still counted, and the log says it was not kept.
      spdlog::error("exporter {}: record {} refused ({}) and not set aside: {}", runner.status.name,
                    stored.key.ToString(), reason, status.ToString());
    }
  }
  runner.rejected->Increment(static_cast<double>(records.size()));
  std::lock_guard<std::mutex> lock(runner.mutex);
  runner.status.rejected += records.size();
  runner.status.last_error = reason;
}

bool DeliveryEngine::Deliver(Runner& runner, std::span<const StoredRecord> records,
                             const Payload* payload, const SendResult* first) {
  Exporter& exporter = runner.target.exporter;
  DeliveryHooks hooks;
  hooks.delivered = [&](size_t count) {
    runner.delivered->Increment(static_cast<double>(count));
    std::lock_guard<std::mutex> lock(runner.mutex);
    runner.status.delivered += count;
    runner.status.last_error.clear();
  };
  hooks.rejected = [&](std::span<const StoredRecord> refused, const std::string& reason,
                       bool maybe_delivered) {
    spdlog::warn("exporter {}: {} records refused: {}", runner.status.name, refused.size(), reason);
    SetAside(runner, refused, reason, maybe_delivered);
  };
  hooks.retrying = [&](size_t count, bool retrying, const std::string& detail) {
    if (retrying) {
      runner.retrying->Increment(static_cast<double>(count));
    } else {
      runner.retrying->Decrement(static_cast<double>(count));
    }
    std::lock_guard<std::mutex> lock(runner.mutex);
    runner.status.retrying = retrying ? count : 0;
    if (retrying) runner.status.last_error = detail;
  };
  // Lag keeps being measured while a payload is retried (the loop above does not turn then).
  hooks.sleep = [this, &runner](absl::Duration duration) {
    UpdateLag(runner);
    return Sleep(duration);
  };
  hooks.sent = [&runner](SendVerdict verdict) {
    (verdict == SendVerdict::kOk          ? runner.send_ok
     : verdict == SendVerdict::kRetryable ? runner.send_retryable
                                          : runner.send_permanent)
        ->Increment();
  };
  const bool delivered =
      payload != nullptr && first != nullptr
          ? ContinueDelivery(*exporter.encoder, *exporter.sender, runner.target.retry,
                             runner.random, records, hooks, *payload, *first)
          : DeliverBatch(*exporter.encoder, *exporter.sender, runner.target.retry, runner.random,
                         records, hooks);
  const uint64_t repaired = exporter.encoder->repaired_entries();
  if (repaired > runner.repaired_counted) {
    runner.repaired->Increment(static_cast<double>(repaired - runner.repaired_counted));
    runner.repaired_counted = repaired;
  }
  return delivered;
}

void DeliveryEngine::Advance(Runner& runner, const StoreKey& cursor, uint64_t filtered) {
  if (absl::Status saved = store_.SaveCursor(runner.status.name, cursor); !saved.ok()) {
    spdlog::error("exporter {}: {}", runner.status.name, saved.ToString());
  }
  // Counted with their batch, once it is resolved (a stop before that reads them again).
  if (filtered > 0) runner.filtered->Increment(static_cast<double>(filtered));
  std::lock_guard<std::mutex> lock(runner.mutex);
  runner.status.filtered += filtered;
  runner.status.cursor = cursor;
}

namespace {

// The thread that makes the first send of each batch in flight, one at a time, for the life of
// one delivery loop (instead of a thread started per payload). Send() hands it the payload; the
// verdict comes back through the future. The destructor lets a send in progress finish.
class FirstSendThread {
 public:
  explicit FirstSendThread(Sender& sender) : sender_(sender), thread_([this] { Loop(); }) {}
  FirstSendThread(const FirstSendThread&) = delete;
  FirstSendThread& operator=(const FirstSendThread&) = delete;
  ~FirstSendThread() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_one();
    thread_.join();
  }

  // `payload` must stay alive until the future is ready. One send at a time: the caller takes
  // the verdict of one before it hands over the next.
  std::future<SendResult> Send(const Payload& payload) {
    std::packaged_task<SendResult()> task([this, &payload] { return sender_.Send(payload); });
    std::future<SendResult> verdict = task.get_future();
    {
      std::lock_guard<std::mutex> lock(mutex_);
      task_ = std::move(task);
    }
    wake_.notify_one();
    return verdict;
  }

 private:
  void Loop() {
    for (;;) {
      std::packaged_task<SendResult()> task;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [this] { return task_.valid() || stopping_; });
        if (!task_.valid()) return;
        task = std::move(task_);  // leaves task_ without a task
      }
      task();
    }
  }

  Sender& sender_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::packaged_task<SendResult()> task_;  // guarded by mutex_; valid while one waits
  bool stopping_ = false;                  // guarded by mutex_
  std::thread thread_;                     // last: starts once the rest is built
};

// A batch whose payload is on its way to the backend, sent by the FirstSendThread, while the
// delivery thread prepares the next batch.
struct InFlightBatch {
  std::span<const StoredRecord> records;
  Payload payload;
  std::future<SendResult> first;  // the verdict of its first send
  StoreKey resolved_until;        // the cursor once it is resolved
  uint64_t filtered = 0;
};

}  // namespace

void DeliveryEngine::Run(Runner& runner) {
  Exporter& exporter = runner.target.exporter;
  const ExporterBatchConfig& batch_config = runner.target.batch;
  StoreKey cursor;
  {
    std::lock_guard<std::mutex> lock(runner.mutex);
    cursor = runner.status.cursor;
  }
  // The records read, reused from batch to batch (ReadInto: their memory is kept): one set for
  // the batch in flight, one for the batch being prepared.
  std::array<std::vector<StoredRecord>, 2> buffers;
  size_t next_buffer = 0;
  std::optional<InFlightBatch> in_flight;
  // Declared after `in_flight`, so destroyed before it: a send still running ends before the
  // payload it reads goes.
  FirstSendThread first_sends(*exporter.sender);
  StoreKey read_after = cursor;  // past the batch in flight, when there is one
  // Waits for the batch in flight and resolves it (retries and splits included); false when the
  // engine stopped first (the cursor then stays before it, and nothing after it was sent).
  const auto finish_in_flight = [&]() -> bool {
    if (!in_flight) return true;
    const SendResult first = in_flight->first.get();
    const bool resolved = Deliver(runner, in_flight->records, &in_flight->payload, &first);
    if (resolved) {
      cursor = in_flight->resolved_until;
      Advance(runner, cursor, in_flight->filtered);
    }
    in_flight.reset();
    read_after = cursor;
    return resolved;
  };
  while (!stopping_.load()) {
    UpdateLag(runner);
    std::vector<StoredRecord>& records = buffers[next_buffer];
    absl::StatusOr<size_t> read = store_.ReadInto(exporter.family, read_after, kEndOfStore,
                                                  batch_config.max_records, records);
    if (!read.ok()) {
      spdlog::error("exporter {}: {}", runner.status.name, read.status().ToString());
      if (!finish_in_flight() || !Sleep(absl::Seconds(1))) break;
      continue;
    }
    // Nothing to prepare now (no record, or a partial batch that waits for more, up to max_wait
    // after its oldest record was stored): the batch in flight is resolved first, then the
    // thread waits.
    absl::Duration wait = kIdlePoll;  // no record
    if (*read > 0) {
      const absl::Time oldest = absl::FromUnixNanos(records.front().key.time_unix_nano);
      wait = *read < batch_config.max_records
                 ? std::min(batch_config.max_wait - (absl::Now() - oldest), kIdlePoll)
                 : absl::ZeroDuration();
    }
    if (wait > absl::ZeroDuration()) {
      if (in_flight ? !finish_in_flight() : !Sleep(wait)) break;
      continue;
    }
    // Measure and cut: refused records become dead letters, the batch stays under max_bytes.
    // The batch is the records kept, moved to the front of `records` (in place: no copy).
    size_t kept = 0;
    uint64_t bytes = 0;
    uint64_t filtered = 0;
    StoreKey resolved_until = read_after;
    for (size_t i = 0; i < *read; ++i) {
      StoredRecord& stored = records[i];
      if (!exporter.encoder->Delivers(stored)) {
        ++filtered;
        resolved_until = stored.key;
        continue;
      }
      absl::StatusOr<size_t> size = exporter.encoder->Measure(stored);
      if (!size.ok()) {
        SetAside(runner, std::span<const StoredRecord>(&stored, 1),
                 std::string(size.status().message()), false);
        resolved_until = stored.key;
        continue;
      }
      if (kept > 0 && bytes + *size > batch_config.max_bytes) break;
      bytes += *size;
      resolved_until = stored.key;
      if (kept != i) records[kept] = std::move(stored);
      ++kept;
    }
    const std::span<const StoredRecord> batch(records.data(), kept);
    // Encoded here, while the batch before it may still be on its way.
    absl::StatusOr<Payload> payload =
        kept > 0 ? exporter.encoder->Encode(batch) : absl::StatusOr<Payload>(Payload{});
    if (!finish_in_flight()) break;  // stopping: the cursor stays before both batches
    if (kept == 0 || !payload.ok()) {
      // Nothing to send, or a payload that does not encode (split by DeliverBatch to find the
      // record at fault): delivered here, as it comes.
      if (!Deliver(runner, batch)) break;  // stopping: the cursor stays before this batch
      cursor = resolved_until;
      read_after = cursor;
      Advance(runner, cursor, filtered);
      continue;
    }
    in_flight.emplace();
    in_flight->records = batch;
    in_flight->payload = *std::move(payload);
    in_flight->resolved_until = resolved_until;
    in_flight->filtered = filtered;
    in_flight->first = first_sends.Send(in_flight->payload);
    read_after = resolved_until;
    next_buffer = 1 - next_buffer;
  }
  // A payload on its way when the engine stopped: its verdict is taken (an accepted one moves the
  // cursor; anything else stays for the next start).
  finish_in_flight();
  spdlog::info("exporter {} stopped at {}", runner.status.name, cursor.ToString());
}

}  // namespace meshtel::collector
