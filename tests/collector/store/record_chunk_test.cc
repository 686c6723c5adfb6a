#include "collector/store/record_chunk.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace meshtel::collector {
namespace {

std::string Chunk(const std::vector<std::string>& records) { return EncodeRecordChunk(records); }

TEST(RecordChunkTest, ReadsBackWhatWasWritten) {
  // The encoding, byte by byte: marker, format, count, then size and bytes per record.
  EXPECT_EQ(Chunk({"ab", ""}), std::string("\x00\x01\x02\x02"
                                           "ab"
                                           "\x00",
                                           7));
  EXPECT_EQ(Chunk({std::string(200, 'q')}).substr(0, 5), std::string("\x00\x01\x01\xc8\x01", 5));
  const std::vector<std::string> records = {"\x0a\x01x", "", std::string(300, 'y'),
                                            std::string(70'000, 'z')};
  const std::string value = Chunk(records);
  EXPECT_TRUE(IsRecordChunk(value));
  RecordChunkReader reader;
  ASSERT_TRUE(reader.Reset(value));
  ASSERT_EQ(reader.size(), records.size());
  for (size_t i = 0; i < records.size(); ++i) EXPECT_EQ(reader.record(i), records[i]);
  ASSERT_TRUE(reader.Reset(Chunk({})));
  EXPECT_EQ(reader.size(), 0u);
}

TEST(RecordChunkTest, AValueThatIsNotAChunkIsOneRecord) {
  RecordChunkReader reader;
  const std::string record = "\x0a\x03/ok";
  EXPECT_FALSE(IsRecordChunk(record));
  ASSERT_TRUE(reader.Reset(record));
  ASSERT_EQ(reader.size(), 1u);
  EXPECT_EQ(reader.record(0), record);
  ASSERT_TRUE(reader.Reset(""));  // an empty record (all fields default)
  ASSERT_EQ(reader.size(), 1u);
  EXPECT_EQ(reader.record(0), "");
}

TEST(RecordChunkTest, DamagedFramingIsRefusedAndLeavesNoRecord) {
  const std::string good = Chunk({"abc", "de"});
  RecordChunkReader reader;
  std::vector<std::string> damaged = {
      good.substr(0, good.size() - 1),            // the last record runs past the end
      good + "x",                                 // bytes left over
      std::string("\0\x03", 2) + good.substr(2),  // another chunk format
      std::string("\0", 1),                       // no format byte
      std::string("\0\x01", 2),                   // no count
      std::string("\0\x01\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 13),  // varint too long
      std::string("\0\x01\x05\x01", 4),  // a count larger than the bytes left
  };
  for (const std::string& value : damaged) {
    ASSERT_TRUE(reader.Reset(good));
    EXPECT_FALSE(reader.Reset(value)) << testing::PrintToString(value);
    EXPECT_EQ(reader.size(), 0u);
  }
}

// Records that share most of their bytes, as a chunk's records do.
std::vector<std::string> SimilarRecords(size_t count) {
  std::vector<std::string> records;
  for (size_t i = 0; i < count; ++i) {
    records.push_back("service.name=checkout k8s.namespace.name=shop url.path=/api/cart/" +
                      std::to_string(i * 7919));
  }
  return records;
}

TEST(RecordChunkTest, TheWriterCompressesAndTheReaderReadsBack) {
  const std::vector<std::string> records = SimilarRecords(200);
  const std::vector<std::string_view> views(records.begin(), records.end());
  RecordChunkWriter writer;
  const std::string value(writer.Encode(views));
  EXPECT_TRUE(IsRecordChunk(value));
  EXPECT_EQ(value[1], '\x02');
  size_t plain_size = 0;
  for (const std::string& record : records) plain_size += record.size();
  EXPECT_LT(value.size(), plain_size / 4);
  EXPECT_EQ(RecordCount(value), 200u);
  RecordChunkReader reader;
  ASSERT_TRUE(reader.Reset(value));
  ASSERT_EQ(reader.size(), records.size());
  for (size_t i = 0; i < records.size(); ++i) EXPECT_EQ(reader.record(i), records[i]);

  // What compression would not shrink is written plain.
  const std::vector<std::string_view> one = {"\x0a\x01x"};
  const std::string small(writer.Encode(one));
  EXPECT_EQ(small, Chunk({"\x0a\x01x"}));
  ASSERT_TRUE(reader.Reset(small));
  ASSERT_EQ(reader.size(), 1u);
  EXPECT_EQ(reader.record(0), "\x0a\x01x");
  // No records at all.
  ASSERT_TRUE(reader.Reset(writer.Encode({})));
  EXPECT_EQ(reader.size(), 0u);
  // One record far over the chunk size (a chunk holds at least one), then small ones again: the
  // writer's buffer grows and is reused.
  const std::string large = std::string(1 << 20, 'a') + records[0];
  const std::vector<std::string_view> one_large = {large};
  const std::string large_value(writer.Encode(one_large));
  EXPECT_LT(large_value.size(), large.size() / 10);
  ASSERT_TRUE(reader.Reset(large_value));
  ASSERT_EQ(reader.size(), 1u);
  EXPECT_EQ(reader.record(0), large);
  ASSERT_TRUE(reader.Reset(writer.Encode(views)));
  ASSERT_EQ(reader.size(), records.size());
  EXPECT_EQ(reader.record(199), records[199]);
}

TEST(RecordChunkTest, ADamagedCompressedChunkIsRefusedAndLeavesNoRecord) {
  const std::vector<std::string> records = SimilarRecords(50);
  const std::vector<std::string_view> views(records.begin(), records.end());
  RecordChunkWriter writer;
  const std::string good(writer.Encode(views));
  ASSERT_EQ(good[1], '\x02');
  // The header: marker, format, count (50: one byte), body size (two bytes), then the LZ4 block.
  std::string wrong_count = good;
  wrong_count[2] = 49;
  std::string wrong_size = good;
  wrong_size[3] = static_cast<char>(static_cast<uint8_t>(wrong_size[3]) ^ 0x01);
  std::string flipped = good;
  flipped[flipped.size() / 2] = static_cast<char>(~flipped[flipped.size() / 2]);
  std::string huge_size =
      good.substr(0, 3) + std::string("\xff\xff\xff\xff\x0f", 5) + good.substr(5);
  RecordChunkReader reader;
  for (const std::string& value : {good.substr(0, good.size() - 1), good + "x", wrong_count,
                                   wrong_size, flipped, huge_size, good.substr(0, 4)}) {
    ASSERT_TRUE(reader.Reset(good));
    EXPECT_FALSE(reader.Reset(value)) << testing::PrintToString(value);
    EXPECT_EQ(reader.size(), 0u);
  }
  EXPECT_EQ(RecordCount(std::string("\0\x03\x01", 3)), std::nullopt);
  EXPECT_EQ(RecordCount("\x0a\x01x"), 1u);
}

TEST(RecordChunkTest, RecordsBetweenBoundsAreExclusive) {
  const StoreKey first{100, 50};
  // Records 100#50 .. 100#59.
  auto range = RecordsBetween(first, 10, StoreKey{}, StoreKey{~0ull, ~0ull});
  EXPECT_EQ(range.begin, 0u);
  EXPECT_EQ(range.end, 10u);
  range = RecordsBetween(first, 10, StoreKey{100, 50}, StoreKey{100, 59});
  EXPECT_EQ(range.begin, 1u);
  EXPECT_EQ(range.end, 9u);
  range = RecordsBetween(first, 10, StoreKey{100, 59}, StoreKey{200, 0});
  EXPECT_EQ(range.begin, 10u);
  EXPECT_EQ(range.end, 10u);
  range = RecordsBetween(first, 10, StoreKey{99, ~0ull}, StoreKey{100, 50});
  EXPECT_EQ(range.begin, 0u);
  EXPECT_EQ(range.end, 0u);
  range = RecordsBetween(first, 10, StoreKey{100, ~0ull}, StoreKey{101, 0});
  EXPECT_EQ(range.begin, 10u);
  EXPECT_EQ(range.end, 10u);
  range = RecordsBetween(first, 10, StoreKey{100, 54}, StoreKey{100, 52});  // empty interval
  EXPECT_EQ(range.begin, 5u);
  EXPECT_EQ(range.end, 5u);
}

}  // namespace
}  // namespace meshtel::collector
