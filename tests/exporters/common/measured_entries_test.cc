#include "exporters/common/measured_entries.h"

#include <string>

#include "collector/store/record_store.h"
#include "gtest/gtest.h"

namespace meshtel::exporters {
namespace {

using collector::StoreKey;

// Measures `text` for `key` as an encoder would: appends its bytes and keeps them.
void Measure(MeasuredEntries& entries, const StoreKey& key, uint64_t fingerprint,
             const std::string& text) {
  entries.StartMeasure(key);
  const size_t begin = entries.bytes().size();
  entries.bytes().append(text);
  entries.Keep(key, fingerprint, 0, begin);
}

TEST(MeasuredEntriesTest, FindsWhatWasMeasuredByKeyAndFingerprint) {
  MeasuredEntries entries;
  Measure(entries, {10, 1}, 100, "one");
  Measure(entries, {10, 2}, 200, "two");
  Measure(entries, {11, 3}, 300, "three");
  const MeasuredEntries::Entry* two = entries.Find({10, 2}, 200);
  ASSERT_NE(two, nullptr);
  EXPECT_EQ(entries.BytesOf(*two), "two");
  EXPECT_EQ(entries.BytesOf(*entries.Find({11, 3}, 300)), "three");
  EXPECT_EQ(entries.Find({10, 2}, 201), nullptr);  // another record under the same key
  EXPECT_EQ(entries.Find({10, 4}, 200), nullptr);  // never measured
  // Encoded (split batches encode again): still there until the next Measure().
  entries.Encoded();
  EXPECT_NE(entries.Find({10, 1}, 100), nullptr);
  Measure(entries, {12, 4}, 400, "four");  // the next batch
  EXPECT_EQ(entries.Find({10, 1}, 100), nullptr);
  EXPECT_EQ(entries.BytesOf(*entries.Find({12, 4}, 400)), "four");
}

TEST(MeasuredEntriesTest, RefusedRecordsAndKeysOutOfOrder) {
  MeasuredEntries entries;
  Measure(entries, {10, 1}, 100, "one");
  // A refused record: its bytes go, nothing is kept.
  entries.StartMeasure({10, 2});
  const size_t begin = entries.bytes().size();
  entries.bytes().append("refused");
  entries.Drop(begin);
  Measure(entries, {10, 3}, 300, "three");
  EXPECT_EQ(entries.Find({10, 2}, 0), nullptr);
  EXPECT_EQ(entries.BytesOf(*entries.Find({10, 3}, 300)), "three");
  // A key that does not grow starts over.
  Measure(entries, {10, 3}, 301, "again");
  EXPECT_EQ(entries.Find({10, 1}, 100), nullptr);
  EXPECT_EQ(entries.Find({10, 3}, 300), nullptr);
  EXPECT_EQ(entries.BytesOf(*entries.Find({10, 3}, 301)), "again");
}

TEST(RecordFingerprintTest, TellsRecordsWithOneKeyApartByTheirFieldsAndTime) {
  collector::StoredRecord first;
  first.key = {10, 1};
  first.record.set_path("/a");
  first.record.set_response_code(200);
  collector::StoredRecord same = first;
  EXPECT_EQ(RecordFingerprint(first, 5), RecordFingerprint(same, 5));
  EXPECT_NE(RecordFingerprint(first, 5), RecordFingerprint(first, 6));  // another event time

  collector::StoredRecord other_code = first;
  other_code.record.set_response_code(503);
  EXPECT_NE(RecordFingerprint(first, 5), RecordFingerprint(other_code, 5));

  // Received log records differ by their body.
  collector::StoredRecord log_a;
  log_a.record.mutable_received_log()->set_body("a");
  collector::StoredRecord log_b;
  log_b.record.mutable_received_log()->set_body("b");
  EXPECT_NE(RecordFingerprint(log_a, 5), RecordFingerprint(log_b, 5));
}

}  // namespace
}  // namespace meshtel::exporters
