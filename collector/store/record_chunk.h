#pragma once
// RecordChunk: how the logs family stores records since store format 2 — the serialized records
// of consecutive keys in one RocksDB value, so a batch of records costs a few RocksDB entries
// instead of one per record (the memtable insert, the table-file entry and the iterator step are
// per entry, and they were most of the cost of storing and reading a record).
//
// A chunk's RocksDB key is the StoreKey of its first record; record i of the chunk has the key
// {time_unix_nano, sequence + i} (the store hands out the keys of one append as one time and
// consecutive sequences). Keys handed out later are greater than all of them, so the chunks of a
// family sort like their records.
//
// Value formats, after the marker byte 0x00 and a chunk format byte:
//   0x01 (plain): the record count as a varint, then per record its size as a varint and its
//        bytes — the chunk's body;
//   0x02 (LZ4, store format 3): the record count as a varint, the body's size as a varint, then
//        the body (as in 0x01, count included) compressed as one LZ4 block. The records of a chunk
//        share most of their bytes (a sender's resource and scope, attribute keys, workload
//        names), so the store writes, syncs, keeps in memory and flushes a tenth of them or less.
// A serialized protobuf message never starts with 0x00 (field number 0 is invalid), so a value
// that does not start with the marker is one record by itself: what store format 1 wrote, and
// what the spans family held up to format 4 (it holds chunks since format 5).
//
// Pure functions and value types; safe from any thread. The reader holds views into the value it
// was given (which must outlive them) or into its own buffer (a compressed chunk's body, valid
// until its next Reset).

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "collector/store/store_key.h"

namespace meshtel::collector {

// Appends to a batch close chunks at this many bytes of records or this many records (a chunk
// always holds at least one record, however large): a reader that wants a few records of a chunk
// reads and decompresses all of it.
inline constexpr size_t kRecordChunkMaxBytes = 64 * 1024;
inline constexpr size_t kRecordChunkMaxRecords = 256;

// Whether `value` is a chunk (starts with the marker) rather than one record.
bool IsRecordChunk(std::string_view value);

// The value of a chunk of `records` in the plain format (0x01), in one string.
std::string EncodeRecordChunk(std::span<const std::string> records);

// Writes chunk values of the LZ4 format (0x02); keeps its buffers from one chunk to the next.
class RecordChunkWriter {
 public:
  // The value of a chunk of `records`, valid until the next Encode. When compression would not
  // make it smaller, the value is in the plain format instead.
  std::string_view Encode(std::span<const std::string_view> records);

 private:
  std::string body_;
  std::unique_ptr<char[]> value_;
  size_t value_capacity_ = 0;
};

// The records of one stored value: a chunk's records, or the value itself when it is not a chunk.
class RecordChunkReader {
 public:
  RecordChunkReader() = default;
  RecordChunkReader(const RecordChunkReader&) = delete;  // records_ may point into body_
  RecordChunkReader& operator=(const RecordChunkReader&) = delete;

  // Reads the framing of `value` (decompressing a compressed chunk). False when a chunk is
  // damaged (a size running past the end, bytes left over, a count that does not match, a body
  // that does not decompress to its size): then the reader holds no record.
  bool Reset(std::string_view value);

  size_t size() const { return records_.size(); }
  std::string_view record(size_t i) const { return records_[i]; }

 private:
  // Reads a plain chunk's body (count, then the size-prefixed records).
  bool ReadBody(std::string_view body);

  std::vector<std::string_view> records_;  // keeps its memory from one Reset to the next
  std::string body_;                       // a compressed chunk's body, decompressed
};

// The number of records in `value` without reading them (a compressed chunk's count is in its
// header); nullopt when the framing before them is damaged.
std::optional<size_t> RecordCount(std::string_view value);

// The first and one-past-last index of a chunk's records (first key `first`, `count` records)
// whose keys k satisfy after < k < before.
struct RecordIndexRange {
  size_t begin = 0;
  size_t end = 0;
};
RecordIndexRange RecordsBetween(const StoreKey& first, size_t count, const StoreKey& after,
                                const StoreKey& before);

}  // namespace meshtel::collector
