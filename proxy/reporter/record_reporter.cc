#include "proxy/reporter/record_reporter.h"

#include <algorithm>
#include <utility>

#include "collector/common/record_service_method.h"
#include "spdlog/spdlog.h"

namespace meshtel::proxy {
namespace {

// Records waiting for the batcher beyond this many batches' worth are dropped on arrival: the
// batcher is not keeping up and the request path must not grow memory without bound.
constexpr size_t kMaxPendingBatches = 64;

std::chrono::microseconds ToChrono(absl::Duration duration) {
  return absl::ToChronoMicroseconds(duration);
}

}  // namespace

RecordReporter::RecordReporter(const ReporterConfig& config, std::string instance_id)
    : config_(config), instance_id_(std::move(instance_id)) {
  grpc::ChannelArguments arguments;
  arguments.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS,
                   static_cast<int>(absl::ToInt64Milliseconds(config.reconnect_initial_backoff)));
  arguments.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS,
                   static_cast<int>(absl::ToInt64Milliseconds(config.reconnect_max_backoff)));
  arguments.SetMaxSendMessageSize(-1);
  channel_ = grpc::CreateCustomChannel(config.collectors.front().ToString(),
                                       grpc::InsecureChannelCredentials(), arguments);
  batcher_thread_ = std::thread([this] { BatcherLoop(); });
  stream_thread_ = std::thread([this] { StreamLoop(); });
}

RecordReporter::~RecordReporter() { Shutdown(absl::ZeroDuration()); }

void RecordReporter::Submit(meshtel::v1::RequestRecord&& record) {
  submitted_records_.fetch_add(1, std::memory_order_relaxed);
  bool full_batch = false;
  {
    std::lock_guard<std::mutex> lock(pending_mutex_);
    if (batcher_stopping_.load(std::memory_order_relaxed) ||
        pending_.size() >= kMaxPendingBatches * config_.max_batch_records) {
      dropped_records_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    pending_.push_back(std::move(record));
    full_batch = pending_.size() == config_.max_batch_records;
  }
  if (full_batch) pending_cv_.notify_one();
}

uint64_t RecordReporter::unacked_bytes() const {
  std::lock_guard<std::mutex> lock(batches_mutex_);
  return unacked_bytes_;
}

void RecordReporter::BatcherLoop() {
  while (!batcher_stopping_.load()) {
    {
      std::unique_lock<std::mutex> lock(pending_mutex_);
      pending_cv_.wait_for(lock, ToChrono(config_.flush_interval), [this] {
        return batcher_stopping_.load() || pending_.size() >= config_.max_batch_records;
      });
    }
    CutBatches();
  }
  CutBatches();
}

bool RecordReporter::CutBatches() {
  std::vector<meshtel::v1::RequestRecord> records;
  {
    std::lock_guard<std::mutex> lock(pending_mutex_);
    records.swap(pending_);
  }
  if (records.empty()) return false;
  for (size_t begin = 0; begin < records.size(); begin += config_.max_batch_records) {
    const size_t end = std::min<size_t>(records.size(), begin + config_.max_batch_records);
    meshtel::v1::RecordBatch message;
    message.set_proxy_instance_id(instance_id_);
    message.mutable_records()->Reserve(static_cast<int>(end - begin));
    for (size_t i = begin; i < end; ++i) {
      message.mutable_records()->Add(std::move(records[i]));
    }
    uint64_t sequence = 0;
    {
      std::lock_guard<std::mutex> lock(batches_mutex_);
      sequence = next_sequence_++;
    }
    message.set_sequence(sequence);
    message.set_dropped_records_total(dropped_records_.load());
    const size_t size = message.ByteSizeLong();
    grpc::Slice slice(size);
    message.SerializeWithCachedSizesToArray(const_cast<uint8_t*>(slice.begin()));
    Batch batch{sequence, static_cast<uint32_t>(end - begin), grpc::ByteBuffer(&slice, 1)};
    {
      std::lock_guard<std::mutex> lock(batches_mutex_);
      unacked_bytes_ += size;
      unacked_.push_back(std::move(batch));
      while (unacked_bytes_ > config_.max_unacked_bytes && unacked_.size() > 1) {
        DropOldestLocked();
      }
    }
    batches_cv_.notify_all();
  }
  return true;
}

void RecordReporter::DropOldestLocked() {
  Batch& oldest = unacked_.front();
  dropped_records_.fetch_add(oldest.record_count, std::memory_order_relaxed);
  unacked_bytes_ -= oldest.bytes.Length();
  unacked_.pop_front();
}

bool RecordReporter::SleepUnlessStopping(absl::Duration delay) {
  std::unique_lock<std::mutex> lock(batches_mutex_);
  return !batches_cv_.wait_for(lock, ToChrono(delay), [this] { return stopping_.load(); });
}

void RecordReporter::StreamLoop() {
  const grpc::internal::RpcMethod method(common::kStreamRecordsMethod,
                                         grpc::internal::RpcMethod::BIDI_STREAMING);
  absl::Duration backoff = config_.reconnect_initial_backoff;
  while (!stopping_.load()) {
    // Wait for the channel in short steps so that Shutdown() is never held up.
    const auto connect_deadline = std::chrono::system_clock::now() + ToChrono(backoff);
    bool channel_ready = false;
    while (!stopping_.load() && std::chrono::system_clock::now() < connect_deadline) {
      if (channel_->WaitForConnected(std::chrono::system_clock::now() +
                                     std::chrono::milliseconds(50))) {
        channel_ready = true;
        break;
      }
    }
    if (!channel_ready) {
      backoff = std::min(backoff * 2, config_.reconnect_max_backoff);
      continue;
    }

    grpc::ClientContext context;
    {
      std::lock_guard<std::mutex> lock(context_mutex_);
      if (stopping_.load()) break;
      active_context_ = &context;
    }
    std::unique_ptr<Stream> stream(
        grpc::internal::ClientReaderWriterFactory<grpc::ByteBuffer, grpc::ByteBuffer>::Create(
            channel_.get(), method, &context));
    {
      std::lock_guard<std::mutex> lock(batches_mutex_);
      next_to_send_ = unacked_.empty() ? next_sequence_ : unacked_.front().sequence;
      in_flight_.clear();
    }
    std::atomic<bool> broken{false};
    const uint64_t acked_before = acked_records_.load();
    connected_.store(true);
    spdlog::info("record stream to {} open", config_.collectors.front().ToString());
    std::thread reader([&] { ReadAcks(*stream, broken); });
    ServeStream(*stream, broken);
    connected_.store(false);
    // A broken stream ends the reader by itself, and its status says why; cancel only to stop.
    if (stopping_.load()) context.TryCancel();
    reader.join();
    const grpc::Status status = stream->Finish();
    {
      std::lock_guard<std::mutex> lock(context_mutex_);
      active_context_ = nullptr;
    }
    if (status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) {
      // The collector refused a message over its hard size limit and ended the stream; the
      // batch it could not take is the oldest one not answered. Resending it would loop.
      std::lock_guard<std::mutex> lock(batches_mutex_);
      if (!in_flight_.empty()) {
        const uint64_t culprit = in_flight_.front();
        auto it = std::find_if(unacked_.begin(), unacked_.end(),
                               [&](const Batch& batch) { return batch.sequence == culprit; });
        if (it != unacked_.end()) {
          rejected_records_.fetch_add(it->record_count);
          unacked_bytes_ -= it->bytes.Length();
          unacked_.erase(it);
        }
      }
    }
    if (stopping_.load()) break;
    spdlog::warn("record stream to {} ended: code {} {}", config_.collectors.front().ToString(),
                 static_cast<int>(status.error_code()), status.error_message());
    if (acked_records_.load() > acked_before) backoff = config_.reconnect_initial_backoff;
    if (!SleepUnlessStopping(backoff)) break;
    backoff = std::min(backoff * 2, config_.reconnect_max_backoff);
  }
}

void RecordReporter::ServeStream(Stream& stream, std::atomic<bool>& broken) {
  for (;;) {
    grpc::ByteBuffer bytes;
    {
      std::unique_lock<std::mutex> lock(batches_mutex_);
      batches_cv_.wait(lock, [&] {
        return stopping_.load() || broken.load() ||
               (!unacked_.empty() && unacked_.back().sequence >= next_to_send_);
      });
      if (stopping_.load() || broken.load()) return;
      auto next = std::lower_bound(
          unacked_.begin(), unacked_.end(), next_to_send_,
          [](const Batch& batch, uint64_t sequence) { return batch.sequence < sequence; });
      bytes = next->bytes;
      next_to_send_ = next->sequence + 1;
      in_flight_.push_back(next->sequence);
    }
    if (!stream.Write(bytes)) {
      std::lock_guard<std::mutex> lock(batches_mutex_);
      broken.store(true);
      return;
    }
  }
}

void RecordReporter::ReadAcks(Stream& stream, std::atomic<bool>& broken) {
  grpc::ByteBuffer response;
  meshtel::v1::RecordAck ack;
  while (stream.Read(&response)) {
    grpc::Slice slice;
    if (!response.DumpToSingleSlice(&slice).ok() ||
        !ack.ParseFromArray(slice.begin(), static_cast<int>(slice.size()))) {
      spdlog::warn("undecodable ack from the collector; ignoring it");
      continue;
    }
    {
      std::lock_guard<std::mutex> lock(batches_mutex_);
      uint64_t answered = ack.sequence();
      if (!in_flight_.empty()) {
        answered = in_flight_.front();
        in_flight_.pop_front();
      }
      if (ack.status_code() != 0) {
        auto it = std::find_if(unacked_.begin(), unacked_.end(),
                               [&](const Batch& batch) { return batch.sequence == answered; });
        if (it != unacked_.end()) {
          spdlog::warn("collector rejected batch {} ({} records): {}", answered, it->record_count,
                       ack.status_message());
          rejected_records_.fetch_add(it->record_count);
          unacked_bytes_ -= it->bytes.Length();
          unacked_.erase(it);
        }
      }
      while (!unacked_.empty() && unacked_.front().sequence <= ack.highest_stored_sequence()) {
        acked_records_.fetch_add(unacked_.front().record_count);
        unacked_bytes_ -= unacked_.front().bytes.Length();
        unacked_.pop_front();
      }
    }
    batches_cv_.notify_all();
  }
  {
    std::lock_guard<std::mutex> lock(batches_mutex_);
    broken.store(true);
  }
  batches_cv_.notify_all();
}

uint64_t RecordReporter::Shutdown(absl::Duration deadline) {
  if (shut_down_.exchange(true)) return 0;
  {
    std::lock_guard<std::mutex> lock(pending_mutex_);
    batcher_stopping_.store(true);
  }
  pending_cv_.notify_all();
  batcher_thread_.join();

  uint64_t unacked_records = 0;
  {
    std::unique_lock<std::mutex> lock(batches_mutex_);
    batches_cv_.wait_for(lock, ToChrono(deadline), [this] { return unacked_.empty(); });
    for (const Batch& batch : unacked_) unacked_records += batch.record_count;
    stopping_.store(true);
  }
  batches_cv_.notify_all();
  {
    std::lock_guard<std::mutex> lock(context_mutex_);
    if (active_context_ != nullptr) active_context_->TryCancel();
  }
  stream_thread_.join();
  if (unacked_records > 0) {
    spdlog::warn("{} records were not acknowledged by the collector before shutdown",
                 unacked_records);
  }
  return unacked_records;
}

}  // namespace meshtel::proxy
