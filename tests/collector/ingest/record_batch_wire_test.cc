#include "collector/ingest/record_batch_wire.h"

#include <string>
#include <string_view>
#include <vector>

#include "gtest/gtest.h"
#include "meshtel/v1/record.pb.h"

namespace meshtel::collector {
namespace {

meshtel::v1::RecordBatch Batch(int records) {
  meshtel::v1::RecordBatch batch;
  batch.set_proxy_instance_id("proxy-a");
  batch.set_sequence(300);  // a two-byte varint
  batch.set_dropped_records_total(7);
  for (int i = 0; i < records; ++i) {
    meshtel::v1::RequestRecord* record = batch.add_records();
    record->set_start_time_unix_nano(1755000000000000000u + static_cast<uint64_t>(i));
    record->set_path("/api/" + std::string(static_cast<size_t>(i) * 50, 'x'));  // lengths > 127
    record->set_response_code(200);
    record->mutable_source()->set_workload("frontend");
  }
  return batch;
}

TEST(RecordBatchWireTest, ViewsAreTheRecordsBytesInOrder) {
  const meshtel::v1::RecordBatch batch = Batch(5);
  const std::string bytes = batch.SerializeAsString();
  std::vector<std::string_view> views;
  ASSERT_TRUE(RecordBatchRecordBytes(bytes, views));
  ASSERT_EQ(views.size(), 5u);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(views[static_cast<size_t>(i)], batch.records(i).SerializeAsString()) << i;
    meshtel::v1::RequestRecord parsed;
    ASSERT_TRUE(parsed.ParseFromArray(views[static_cast<size_t>(i)].data(),
                                      static_cast<int>(views[static_cast<size_t>(i)].size())));
    EXPECT_EQ(parsed.path(), batch.records(i).path());
  }
}

TEST(RecordBatchWireTest, RecordsAfterTheHeaderAndAnEmptyBatch) {
  // A proxy may put the header after the records (concatenated messages merge).
  meshtel::v1::RecordBatch records = Batch(3);
  records.clear_proxy_instance_id();
  meshtel::v1::RecordBatch header;
  header.set_proxy_instance_id("proxy-b");
  header.set_sequence(1);
  const std::string bytes = records.SerializeAsString() + header.SerializeAsString();
  std::vector<std::string_view> views{"stale"};
  ASSERT_TRUE(RecordBatchRecordBytes(bytes, views));
  ASSERT_EQ(views.size(), 3u);
  EXPECT_EQ(views[2], records.records(2).SerializeAsString());

  ASSERT_TRUE(RecordBatchRecordBytes(header.SerializeAsString(), views));
  EXPECT_TRUE(views.empty());
  ASSERT_TRUE(RecordBatchRecordBytes("", views));
  EXPECT_TRUE(views.empty());
}

TEST(RecordBatchWireTest, UnknownFieldsOfEveryWireTypeAreSkipped) {
  std::string bytes = Batch(1).SerializeAsString();
  bytes += std::string("\x28\x96\x01", 3);                // field 5, varint 150
  bytes += std::string("\x31") + std::string(8, '\x01');  // field 6, fixed64
  bytes += std::string("\x3d") + std::string(4, '\x02');  // field 7, fixed32
  bytes += std::string("\x42\x03", 2) + "abc";            // field 8, 3 bytes
  std::vector<std::string_view> views;
  ASSERT_TRUE(RecordBatchRecordBytes(bytes, views));
  EXPECT_EQ(views.size(), 1u);
}

TEST(RecordBatchWireTest, MalformedBytesAreRefused) {
  const std::string good = Batch(2).SerializeAsString();
  std::vector<std::string_view> views;
  // Cut before its end: the last field (dropped_records_total) has no value.
  EXPECT_FALSE(RecordBatchRecordBytes(std::string_view(good).substr(0, good.size() - 1), views));
  EXPECT_FALSE(RecordBatchRecordBytes(std::string("\x1a\x05", 2) + "ab", views));  // short record
  EXPECT_FALSE(RecordBatchRecordBytes(std::string("\x1a", 1), views));             // no length
  EXPECT_FALSE(RecordBatchRecordBytes(std::string("\x10\xff", 2), views));         // cut varint
  EXPECT_FALSE(RecordBatchRecordBytes(std::string("\x31\x01\x02", 3), views));     // short fixed64
  EXPECT_FALSE(RecordBatchRecordBytes(std::string("\x3d\x01", 2), views));         // short fixed32
  EXPECT_FALSE(RecordBatchRecordBytes(std::string("\x1b\x1c", 2), views));         // a group
  EXPECT_FALSE(RecordBatchRecordBytes(std::string("\x1e\x00", 2), views));         // wire type 6
  EXPECT_FALSE(RecordBatchRecordBytes(std::string("\x02\x00", 2), views));         // field 0
  EXPECT_FALSE(RecordBatchRecordBytes(std::string(11, '\xff'), views));            // 11-byte varint
}

// A batch whose records do not all parse: its own fields and the records that do, with their
// bytes; the others counted.
TEST(RecordBatchWireTest, SalvageKeepsTheRecordsThatParse) {
  meshtel::v1::RecordBatch batch = Batch(5);
  batch.mutable_records(1)->set_user_agent("caf\xe9");  // not UTF-8: refused by protobuf
  batch.mutable_records(3)->set_path("\xff\xfe");       // the same
  const std::string bytes = batch.SerializeAsString() + std::string("\x42\x03", 2) + "abc";
  meshtel::v1::RecordBatch whole;
  ASSERT_FALSE(whole.ParseFromString(bytes));
  meshtel::v1::RecordBatch salvaged;
  std::vector<std::string_view> views;
  size_t invalid = 0;
  ASSERT_TRUE(SalvageRecordBatch(bytes, salvaged, views, invalid));
  EXPECT_EQ(invalid, 2u);
  EXPECT_EQ(salvaged.proxy_instance_id(), "proxy-a");
  EXPECT_EQ(salvaged.sequence(), 300u);
  EXPECT_EQ(salvaged.dropped_records_total(), 7u);
  ASSERT_EQ(salvaged.records_size(), 3);
  ASSERT_EQ(views.size(), 3u);
  const int kept[] = {0, 2, 4};
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(salvaged.records(i).path(), batch.records(kept[i]).path());
    EXPECT_EQ(views[static_cast<size_t>(i)], batch.records(kept[i]).SerializeAsString());
  }
  // A batch that parses is salvaged whole; one that is malformed, or whose instance id is not
  // UTF-8, is not.
  ASSERT_TRUE(SalvageRecordBatch(Batch(2).SerializeAsString(), salvaged, views, invalid));
  EXPECT_EQ(invalid, 0u);
  EXPECT_EQ(salvaged.records_size(), 2);
  EXPECT_FALSE(SalvageRecordBatch(std::string_view(bytes).substr(0, bytes.size() - 1), salvaged,
                                  views, invalid));
  meshtel::v1::RecordBatch odd_id = Batch(1);
  odd_id.set_proxy_instance_id("proxy-\xe9");
  EXPECT_FALSE(SalvageRecordBatch(odd_id.SerializeAsString(), salvaged, views, invalid));
}

}  // namespace
}  // namespace meshtel::collector
