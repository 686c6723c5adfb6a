#pragma once
// MeasuredEntries: what an encoder's Measure() already encoded, kept for its Encode().
//
// The delivery engine measures each record of a batch (Encoder::Measure, to keep the payload
// under its byte cap) and then encodes the records it kept (Encoder::Encode, several times for
// the halves of a refused batch). An encoder that has to encode a record to measure it keeps
// the encoded bytes here, so that Encode() copies them instead of encoding the record again.
//
// Entries are found by store key and checked with a fingerprint the encoder computes from the
// record (the store never hands out a key twice, but tests build records with equal keys): a
// record that is not found is simply encoded again, so the cache can only save work, never
// change a payload. The first Measure() after an Encode() starts a new batch and drops the
// entries of the last one; so does a key that is not greater than the last one measured (not
// the engine's order: lookups need the keys sorted).
//
// Threading: none (an encoder is used by one thread at a time). Memory: the encoded bytes of
// one measured batch (bounded by the exporter's batch caps).

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "collector/store/store_key.h"

namespace meshtel::collector {
struct StoredRecord;
}  // namespace meshtel::collector

namespace meshtel::exporters {

// What tells two records with the same store key apart, for MeasuredEntries: a hash of `time_ns`
// (the encoder's event time) and of the record's fields that differ between such records.
uint64_t RecordFingerprint(const collector::StoredRecord& stored, uint64_t time_ns);

class MeasuredEntries {
 public:
  struct Entry {
    collector::StoreKey key;
    uint64_t fingerprint = 0;
    uint32_t flags = 0;  // the encoder's own (e.g. "its line was repaired")
    size_t begin = 0;    // the bytes, in bytes()
    size_t end = 0;
  };

  // Called first by Measure() for `key`: starts over when a new batch begins.
  void StartMeasure(const collector::StoreKey& key) {
    if (encoded_ || (!entries_.empty() && !(entries_.back().key < key))) {
      entries_.clear();
      bytes_.clear();
      encoded_ = false;
    }
  }
  // Where Measure() appends the record's encoded bytes; then Keep() or Drop() them.
  std::string& bytes() { return bytes_; }
  // Keeps the bytes appended since `begin` (bytes().size() before Measure() appended them) as
  // the entry of `key`.
  void Keep(const collector::StoreKey& key, uint64_t fingerprint, uint32_t flags, size_t begin) {
    entries_.push_back(Entry{key, fingerprint, flags, begin, bytes_.size()});
  }
  // Forgets the bytes appended since `begin` (a record Measure() refused).
  void Drop(size_t begin) { bytes_.resize(begin); }

  // Called by Encode(): the next Measure() starts a new batch.
  void Encoded() { encoded_ = true; }
  // The kept entry of `key` with this fingerprint, or nullptr.
  const Entry* Find(const collector::StoreKey& key, uint64_t fingerprint) const;
  std::string_view BytesOf(const Entry& entry) const {
    return std::string_view(bytes_).substr(entry.begin, entry.end - entry.begin);
  }
  bool empty() const { return entries_.empty(); }

 private:
  std::vector<Entry> entries_;  // in key order
  std::string bytes_;
  bool encoded_ = false;
};

}  // namespace meshtel::exporters
