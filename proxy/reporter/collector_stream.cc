#include "proxy/reporter/collector_stream.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "collector/common/record_service_method.h"
#include "google/protobuf/io/coded_stream.h"
#include "spdlog/spdlog.h"

namespace meshtel::proxy {
namespace {

using Clock = std::chrono::steady_clock;

std::chrono::microseconds ToChrono(absl::Duration duration) {
  return absl::ToChronoMicroseconds(duration);
}

}  // namespace

CollectorStream::CollectorStream(const ReporterConfig& config, const common::HostPort& address,
                                 std::string instance_id, uint64_t max_unacked_bytes,
                                 ReporterCounters& counters)
    : config_(config),
      address_text_(address.ToString()),
      instance_id_(std::move(instance_id)),
      max_unacked_bytes_(max_unacked_bytes),
      counters_(counters),
      last_connected_(Clock::now()) {
  grpc::ChannelArguments arguments;
  arguments.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS,
                   static_cast<int>(absl::ToInt64Milliseconds(config.reconnect_initial_backoff)));
  arguments.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS,
                   static_cast<int>(absl::ToInt64Milliseconds(config.reconnect_max_backoff)));
  arguments.SetMaxSendMessageSize(-1);
  // Each stream has its own connection, even to the same address.
  arguments.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  channel_ =
      grpc::CreateCustomChannel(address_text_, grpc::InsecureChannelCredentials(), arguments);
  stream_thread_ = std::thread([this] { StreamLoop(); });
}

CollectorStream::~CollectorStream() { Stop(); }

// Encodes a meshtel.v1.RecordBatch around records that are already serialized: field 1
// proxy_instance_id, 2 sequence, 3 each record (length-delimited), 4 dropped_records_total.
static grpc::ByteBuffer EncodeBatch(std::string_view instance_id, uint64_t sequence,
                                    const std::vector<std::string>& records,
                                    uint64_t dropped_total) {
  using google::protobuf::io::CodedOutputStream;
  size_t size = 1 + CodedOutputStream::VarintSize64(instance_id.size()) + instance_id.size() + 1 +
                CodedOutputStream::VarintSize64(sequence);
  for (const std::string& record : records) {
    size += 1 + CodedOutputStream::VarintSize64(record.size()) + record.size();
  }
  if (dropped_total > 0) size += 1 + CodedOutputStream::VarintSize64(dropped_total);
  grpc::Slice slice(size);
  uint8_t* out = const_cast<uint8_t*>(slice.begin());
  const auto bytes = [&out](std::string_view data) {
    out = CodedOutputStream::WriteVarint64ToArray(data.size(), out);
    std::memcpy(out, data.data(), data.size());
    out += data.size();
  };
  *out++ = (1 << 3) | 2;
  bytes(instance_id);
  *out++ = (2 << 3) | 0;
  out = CodedOutputStream::WriteVarint64ToArray(sequence, out);
  for (const std::string& record : records) {
    *out++ = (3 << 3) | 2;
    bytes(record);
  }
  if (dropped_total > 0) {
    *out++ = (4 << 3) | 0;
    out = CodedOutputStream::WriteVarint64ToArray(dropped_total, out);
  }
  return grpc::ByteBuffer(&slice, 1);
}

void CollectorStream::Enqueue(std::vector<std::string>&& records) {
  if (records.empty()) return;
  uint64_t sequence = 0;
  uint64_t dropped_total = 0;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    sequence = next_sequence_++;
    dropped_total = dropped_total_;
  }
  // Encoded outside the lock: the stream threads only need the finished bytes.
  Batch batch{sequence, static_cast<uint32_t>(records.size()),
              EncodeBatch(instance_id_, sequence, records, dropped_total)};
  const size_t size = batch.bytes.Length();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    unacked_bytes_ += size;
    unacked_records_ += batch.record_count;
    // Sequences are taken in order but batches may arrive here out of order from concurrent
    // callers; keep the deque sorted.
    auto at = std::upper_bound(
        unacked_.begin(), unacked_.end(), batch.sequence,
        [](uint64_t sequence, const Batch& other) { return sequence < other.sequence; });
    unacked_.insert(at, std::move(batch));
    while (unacked_bytes_ > max_unacked_bytes_ && unacked_.size() > 1) DropOldestLocked();
  }
  changed_.notify_all();
}

void CollectorStream::AddDropped(uint64_t records) {
  std::lock_guard<std::mutex> lock(mutex_);
  dropped_total_ += records;
}

void CollectorStream::RemoveLocked(std::deque<Batch>::iterator batch,
                                   std::atomic<uint64_t>& counter) {
  counter.fetch_add(batch->record_count, std::memory_order_relaxed);
  unacked_bytes_ -= batch->bytes.Length();
  unacked_records_ -= batch->record_count;
  unacked_.erase(batch);
}

void CollectorStream::DropOldestLocked() {
  dropped_total_ += unacked_.front().record_count;
  RemoveLocked(unacked_.begin(), counters_.dropped);
}

std::vector<QueuedRecord> CollectorStream::TakeUnacked() {
  std::deque<Batch> taken;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    taken.swap(unacked_);
    unacked_bytes_ = 0;
    unacked_records_ = 0;
  }
  changed_.notify_all();
  std::vector<QueuedRecord> records;
  meshtel::v1::RecordBatch message;
  for (Batch& batch : taken) {
    grpc::Slice slice;
    if (!batch.bytes.DumpToSingleSlice(&slice).ok() ||
        !message.ParseFromArray(slice.begin(), static_cast<int>(slice.size()))) {
      continue;  // cannot happen: the bytes were serialized here
    }
    for (const auto& record : message.records()) {
      records.emplace_back();
      records.back().Encode(record);
    }
  }
  return records;
}

uint64_t CollectorStream::unacked_bytes() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return unacked_bytes_;
}

uint64_t CollectorStream::unacked_records() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return unacked_records_;
}

std::chrono::steady_clock::time_point CollectorStream::last_connected() const {
  if (connected_.load()) return Clock::now();
  std::lock_guard<std::mutex> lock(mutex_);
  return last_connected_;
}

bool CollectorStream::SleepUnlessStopping(absl::Duration delay) {
  std::unique_lock<std::mutex> lock(mutex_);
  return !changed_.wait_for(lock, ToChrono(delay), [this] { return stopping_.load(); });
}

void CollectorStream::StreamLoop() {
  const grpc::internal::RpcMethod method(common::kStreamRecordsMethod,
                                         grpc::internal::RpcMethod::BIDI_STREAMING);
  absl::Duration backoff = config_.reconnect_initial_backoff;
  while (!stopping_.load()) {
    // Wait for the channel in short steps so that Stop() is never held up.
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
      std::lock_guard<std::mutex> lock(mutex_);
      next_to_send_ = unacked_.empty() ? next_sequence_ : unacked_.front().sequence;
      in_flight_.clear();
    }
    std::atomic<bool> broken{false};
    const uint64_t acked_before = counters_.acked.load();
    connected_.store(true);
    spdlog::info("record stream to {} open", address_text_);
    std::thread reader([&] { ReadAcks(*stream, broken); });
    ServeStream(*stream, broken);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      last_connected_ = Clock::now();
      connected_.store(false);
    }
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
      std::lock_guard<std::mutex> lock(mutex_);
      if (!in_flight_.empty()) {
        const uint64_t culprit = in_flight_.front();
        auto it = std::find_if(unacked_.begin(), unacked_.end(),
                               [&](const Batch& batch) { return batch.sequence == culprit; });
        if (it != unacked_.end()) RemoveLocked(it, counters_.rejected);
      }
    }
    if (stopping_.load()) break;
    spdlog::warn("record stream to {} ended: code {} {}", address_text_,
                 static_cast<int>(status.error_code()), status.error_message());
    if (counters_.acked.load() > acked_before) backoff = config_.reconnect_initial_backoff;
    if (!SleepUnlessStopping(backoff)) break;
    backoff = std::min(backoff * 2, config_.reconnect_max_backoff);
  }
}

void CollectorStream::ServeStream(Stream& stream, std::atomic<bool>& broken) {
  for (;;) {
    grpc::ByteBuffer bytes;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      changed_.wait(lock, [&] {
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
      std::lock_guard<std::mutex> lock(mutex_);
      broken.store(true);
      return;
    }
  }
}

void CollectorStream::ReadAcks(Stream& stream, std::atomic<bool>& broken) {
  grpc::ByteBuffer response;
  meshtel::v1::RecordAck ack;
  while (stream.Read(&response)) {
    grpc::Slice slice;
    if (!response.DumpToSingleSlice(&slice).ok() ||
        !ack.ParseFromArray(slice.begin(), static_cast<int>(slice.size()))) {
      spdlog::warn("undecodable ack from the collector at {}; ignoring it", address_text_);
      continue;
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      uint64_t answered = ack.sequence();
      if (!in_flight_.empty()) {
        answered = in_flight_.front();
        in_flight_.pop_front();
      }
      if (ack.status_code() != 0) {
        auto it = std::find_if(unacked_.begin(), unacked_.end(),
                               [&](const Batch& batch) { return batch.sequence == answered; });
        if (it != unacked_.end()) {
          spdlog::warn("collector at {} rejected batch {} ({} records): {}", address_text_,
                       answered, it->record_count, ack.status_message());
          RemoveLocked(it, counters_.rejected);
        }
      }
      while (!unacked_.empty() && unacked_.front().sequence <= ack.highest_stored_sequence()) {
        RemoveLocked(unacked_.begin(), counters_.acked);
      }
    }
    changed_.notify_all();
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    broken.store(true);
  }
  changed_.notify_all();
}

uint64_t CollectorStream::WaitForAcks(absl::Duration deadline) {
  std::unique_lock<std::mutex> lock(mutex_);
  changed_.wait_for(lock, ToChrono(deadline), [this] { return unacked_.empty(); });
  return unacked_records_;
}

void CollectorStream::Stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);  // so that no waiter misses the change
    stopping_.store(true);
  }
  changed_.notify_all();
  {
    std::lock_guard<std::mutex> lock(context_mutex_);
    if (active_context_ != nullptr) active_context_->TryCancel();
  }
  if (stream_thread_.joinable()) stream_thread_.join();
}

}  // namespace meshtel::proxy
