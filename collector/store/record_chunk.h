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
// Value format: the marker byte 0x00, the chunk format byte 0x01, the record count as a varint,
// then per record its size as a varint and its bytes. A serialized protobuf message never starts
// with 0x00 (field number 0 is invalid), so a value that does not start with the marker is one
// record by itself: what store format 1 wrote, and what the spans family still holds.
//
// Pure functions and a value type; safe from any thread. The reader holds views into the value
// it was given, which must outlive them.

#include <cstddef>
#include <cstdint>
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

// The most bytes a chunk header takes, and a record's size prefix.
inline constexpr size_t kRecordChunkMaxHeaderSize = 2 + 10;
inline constexpr size_t kRecordChunkMaxSizePrefix = 10;

// Whether `value` is a chunk (starts with the marker) rather than one record.
bool IsRecordChunk(std::string_view value);

// Writes the header of a chunk of `count` records to `out` (room for kRecordChunkMaxHeaderSize
// bytes); returns the bytes written.
size_t EncodeRecordChunkHeader(size_t count, char* out);
// Writes a record's size prefix to `out` (room for kRecordChunkMaxSizePrefix bytes); returns the
// bytes written.
size_t EncodeRecordChunkSizePrefix(size_t size, char* out);

// The whole value of a chunk of `records`, in one string: the bytes the write path writes in
// parts (the header, then each record's size prefix and bytes).
std::string EncodeRecordChunk(std::span<const std::string> records);

// The records of one stored value: a chunk's records, or the value itself when it is not a chunk.
class RecordChunkReader {
 public:
  // Reads the framing of `value`. False when a chunk's framing is damaged (a size running past
  // the end, bytes left over, a count that does not match): then the reader holds no record.
  bool Reset(std::string_view value);

  size_t size() const { return records_.size(); }
  std::string_view record(size_t i) const { return records_[i]; }

 private:
  std::vector<std::string_view> records_;  // keeps its memory from one Reset to the next
};

// The first and one-past-last index of a chunk's records (first key `first`, `count` records)
// whose keys k satisfy after < k < before.
struct RecordIndexRange {
  size_t begin = 0;
  size_t end = 0;
};
RecordIndexRange RecordsBetween(const StoreKey& first, size_t count, const StoreKey& after,
                                const StoreKey& before);

}  // namespace meshtel::collector
