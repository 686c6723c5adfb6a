#pragma once
// Benchmark support: the client side of durable ingest, as meshtel-proxy's reporter sends — one
// gRPC RecordService stream per "proxy", one batch in flight, the next one after its ack. Batches
// are serialized once before timing (RecordBlock); only the header (instance id, sequence) is
// added per send. Used by store_ingest_bench and export_bench.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "collector/common/record_service_method.h"
#include "fmt/format.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/support/sync_stream.h"
#include "meshtel/v1/record.pb.h"

namespace meshtel::bench {

// A batch's records, serialized (field 3 of RecordBatch, repeated), and their record bytes.
struct RecordBlock {
  std::string serialized;
  uint64_t record_bytes = 0;
};

// One stream's batches: `records` cut into blocks; a batch is a block plus its header.
inline std::vector<RecordBlock> MakeBlocks(const std::vector<meshtel::v1::RequestRecord>& records,
                                           int batch_records, size_t first, int count) {
  std::vector<RecordBlock> blocks;
  for (int b = 0; b < count; ++b) {
    meshtel::v1::RecordBatch batch;
    RecordBlock block;
    for (int i = 0; i < batch_records; ++i) {
      const auto& record =
          records[(first + static_cast<size_t>(b * batch_records + i)) % records.size()];
      block.record_bytes += record.ByteSizeLong();
      *batch.add_records() = record;
    }
    block.serialized = batch.SerializeAsString();
    blocks.push_back(std::move(block));
  }
  return blocks;
}

struct StreamResult {
  uint64_t batches = 0;
  uint64_t records = 0;
  uint64_t record_bytes = 0;
  std::string error;
};

// Sends batches on one stream (instance "bench-proxy-<index>", sequences 1, 2, ...) from when `go`
// is set until `deadline`; counts what was acked OK. With `batches_per_second` > 0 batch n is not
// sent before n / batches_per_second seconds after the start (a steady load); else each one
// follows the previous one's ack. A refused batch or a broken stream ends it with `error` set.
inline void RunStream(uint16_t port, int index, const std::vector<RecordBlock>& blocks,
                      int batch_records, const std::atomic<bool>& go,
                      std::chrono::steady_clock::time_point deadline, StreamResult& result,
                      double batches_per_second) {
  using RawStream = grpc::ClientReaderWriter<grpc::ByteBuffer, grpc::ByteBuffer>;
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // a connection of its own
  args.SetInt(GRPC_ARG_MAX_SEND_MESSAGE_LENGTH, -1);
  auto channel = grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(port),
                                           grpc::InsecureChannelCredentials(), args);
  static const grpc::internal::RpcMethod method(meshtel::common::kStreamRecordsMethod,
                                                grpc::internal::RpcMethod::BIDI_STREAMING);
  grpc::ClientContext context;
  std::unique_ptr<RawStream> stream(
      grpc::internal::ClientReaderWriterFactory<grpc::ByteBuffer, grpc::ByteBuffer>::Create(
          channel.get(), method, &context));
  const std::string instance = fmt::format("bench-proxy-{}", index);
  while (!go.load()) std::this_thread::yield();
  const auto start = std::chrono::steady_clock::now();
  for (uint64_t sequence = 1; std::chrono::steady_clock::now() < deadline; ++sequence) {
    if (batches_per_second > 0) {
      std::this_thread::sleep_until(
          start + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                      std::chrono::duration<double>(static_cast<double>(sequence - 1) /
                                                    batches_per_second)));
      if (std::chrono::steady_clock::now() >= deadline) break;
    }
    const RecordBlock& block = blocks[sequence % blocks.size()];
    meshtel::v1::RecordBatch header;
    header.set_proxy_instance_id(instance);
    header.set_sequence(sequence);
    std::string bytes = block.serialized;
    header.AppendToString(&bytes);  // concatenated messages merge: records + header
    grpc::Slice slice(std::move(bytes));
    if (!stream->Write(grpc::ByteBuffer(&slice, 1))) {
      result.error = "write failed";
      break;
    }
    grpc::ByteBuffer response;
    if (!stream->Read(&response)) {
      result.error = "no ack";
      break;
    }
    grpc::Slice ack_slice;
    meshtel::v1::RecordAck ack;
    if (!response.DumpToSingleSlice(&ack_slice).ok() ||
        !ack.ParseFromArray(ack_slice.begin(), static_cast<int>(ack_slice.size())) ||
        ack.status_code() != 0 || ack.sequence() != sequence) {
      result.error = fmt::format("bad ack for {}: code {} {}", sequence, ack.status_code(),
                                 ack.status_message());
      break;
    }
    ++result.batches;
    result.records += static_cast<uint64_t>(batch_records);
    result.record_bytes += block.record_bytes;
  }
  stream->WritesDone();
  const grpc::Status status = stream->Finish();
  if (!status.ok() && result.error.empty()) result.error = status.error_message();
}

}  // namespace meshtel::bench
