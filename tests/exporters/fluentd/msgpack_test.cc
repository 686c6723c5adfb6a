#include "exporters/fluentd/msgpack.h"

#include <cstdint>
#include <limits>
#include <string>

#include "gtest/gtest.h"

namespace meshtel::exporters::fluentd {
namespace {

// Bytes from a list of values, for expectations written as in the msgpack spec.
std::string Bytes(std::initializer_list<int> bytes) {
  std::string out;
  for (int b : bytes) out.push_back(static_cast<char>(b));
  return out;
}

template <class Write>
std::string Written(Write write) {
  std::string out;
  MsgpackWriter writer(out);
  write(writer);
  return out;
}

MsgpackValue Decoded(const std::string& data) {
  size_t consumed = 0;
  absl::StatusOr<MsgpackValue> value = DecodeMsgpack(data, consumed);
  EXPECT_TRUE(value.ok()) << value.status();
  EXPECT_EQ(consumed, data.size());
  return value.ok() ? *value : MsgpackValue{};
}

TEST(MsgpackWriterTest, NilAndBool) {
  EXPECT_EQ(Written([](MsgpackWriter& w) { w.Nil(); }), Bytes({0xc0}));
  EXPECT_EQ(Written([](MsgpackWriter& w) { w.Bool(false); }), Bytes({0xc2}));
  EXPECT_EQ(Written([](MsgpackWriter& w) { w.Bool(true); }), Bytes({0xc3}));
}

TEST(MsgpackWriterTest, UnsignedIntegersTakeTheShortestForm) {
  auto u = [](uint64_t v) { return Written([v](MsgpackWriter& w) { w.Uint(v); }); };
  EXPECT_EQ(u(0), Bytes({0x00}));
  EXPECT_EQ(u(127), Bytes({0x7f}));
  EXPECT_EQ(u(128), Bytes({0xcc, 0x80}));
  EXPECT_EQ(u(255), Bytes({0xcc, 0xff}));
  EXPECT_EQ(u(256), Bytes({0xcd, 0x01, 0x00}));
  EXPECT_EQ(u(65535), Bytes({0xcd, 0xff, 0xff}));
  EXPECT_EQ(u(65536), Bytes({0xce, 0x00, 0x01, 0x00, 0x00}));
  EXPECT_EQ(u(4294967295u), Bytes({0xce, 0xff, 0xff, 0xff, 0xff}));
  EXPECT_EQ(u(4294967296u), Bytes({0xcf, 0, 0, 0, 0x01, 0, 0, 0, 0}));
  EXPECT_EQ(u(UINT64_MAX), Bytes({0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}));
}

TEST(MsgpackWriterTest, SignedIntegersTakeTheShortestForm) {
  auto i = [](int64_t v) { return Written([v](MsgpackWriter& w) { w.Int(v); }); };
  EXPECT_EQ(i(5), Bytes({0x05}));
  EXPECT_EQ(i(200), Bytes({0xcc, 0xc8}));  // non-negative values use the unsigned forms
  EXPECT_EQ(i(-1), Bytes({0xff}));
  EXPECT_EQ(i(-32), Bytes({0xe0}));
  EXPECT_EQ(i(-33), Bytes({0xd0, 0xdf}));
  EXPECT_EQ(i(-128), Bytes({0xd0, 0x80}));
  EXPECT_EQ(i(-129), Bytes({0xd1, 0xff, 0x7f}));
  EXPECT_EQ(i(-32768), Bytes({0xd1, 0x80, 0x00}));
  EXPECT_EQ(i(-32769), Bytes({0xd2, 0xff, 0xff, 0x7f, 0xff}));
  EXPECT_EQ(i(INT32_MIN), Bytes({0xd2, 0x80, 0x00, 0x00, 0x00}));
  EXPECT_EQ(i(int64_t{INT32_MIN} - 1),
            Bytes({0xd3, 0xff, 0xff, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff}));
  EXPECT_EQ(i(INT64_MIN), Bytes({0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0}));
}

TEST(MsgpackWriterTest, Float64) {
  EXPECT_EQ(Written([](MsgpackWriter& w) { w.Double(1.5); }),
            Bytes({0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0}));
}

TEST(MsgpackWriterTest, StrLengths) {
  EXPECT_EQ(Written([](MsgpackWriter& w) { w.Str(""); }), Bytes({0xa0}));
  EXPECT_EQ(Written([](MsgpackWriter& w) { w.Str("abc"); }), Bytes({0xa3, 'a', 'b', 'c'}));
  const std::string s31(31, 'x'), s32(32, 'x'), s256(256, 'x'), s65536(65536, 'x');
  EXPECT_EQ(Written([&](MsgpackWriter& w) { w.Str(s31); }), Bytes({0xbf}) + s31);
  EXPECT_EQ(Written([&](MsgpackWriter& w) { w.Str(s32); }), Bytes({0xd9, 32}) + s32);
  EXPECT_EQ(Written([&](MsgpackWriter& w) { w.Str(s256); }), Bytes({0xda, 0x01, 0x00}) + s256);
  EXPECT_EQ(Written([&](MsgpackWriter& w) { w.Str(s65536); }),
            Bytes({0xdb, 0x00, 0x01, 0x00, 0x00}) + s65536);
}

TEST(MsgpackWriterTest, BinLengths) {
  EXPECT_EQ(Written([](MsgpackWriter& w) { w.Bin(""); }), Bytes({0xc4, 0x00}));
  EXPECT_EQ(Written([](MsgpackWriter& w) { w.Bin(Bytes({1, 2})); }), Bytes({0xc4, 2, 1, 2}));
  const std::string b256(256, 'x'), b65536(65536, 'x');
  EXPECT_EQ(Written([&](MsgpackWriter& w) { w.Bin(b256); }), Bytes({0xc5, 0x01, 0x00}) + b256);
  EXPECT_EQ(Written([&](MsgpackWriter& w) { w.Bin(b65536); }),
            Bytes({0xc6, 0x00, 0x01, 0x00, 0x00}) + b65536);
}

TEST(MsgpackWriterTest, ContainerHeaders) {
  EXPECT_EQ(Written([](MsgpackWriter& w) { w.ArrayHeader(0); }), Bytes({0x90}));
  EXPECT_EQ(Written([](MsgpackWriter& w) { w.ArrayHeader(15); }), Bytes({0x9f}));
  EXPECT_EQ(Written([](MsgpackWriter& w) { w.ArrayHeader(16); }), Bytes({0xdc, 0x00, 0x10}));
  EXPECT_EQ(Written([](MsgpackWriter& w) { w.ArrayHeader(65536); }),
            Bytes({0xdd, 0x00, 0x01, 0x00, 0x00}));
  EXPECT_EQ(Written([](MsgpackWriter& w) { w.MapHeader(1); }), Bytes({0x81}));
  EXPECT_EQ(Written([](MsgpackWriter& w) { w.MapHeader(16); }), Bytes({0xde, 0x00, 0x10}));
  EXPECT_EQ(Written([](MsgpackWriter& w) { w.MapHeader(65536); }),
            Bytes({0xdf, 0x00, 0x01, 0x00, 0x00}));
}

TEST(MsgpackWriterTest, ExtAndEventTime) {
  EXPECT_EQ(Written([](MsgpackWriter& w) { w.Ext(5, Bytes({9})); }), Bytes({0xd4, 5, 9}));
  EXPECT_EQ(Written([](MsgpackWriter& w) { w.Ext(-1, std::string(16, 'a')); }),
            Bytes({0xd8, 0xff}) + std::string(16, 'a'));
  EXPECT_EQ(Written([](MsgpackWriter& w) {
              w.Ext(1, Bytes({1, 2, 3}));
            }),
            Bytes({0xc7, 3, 1, 1, 2, 3}));
  // wire-facts §6.2: fixext 8, type 0, seconds then nanoseconds, both big-endian.
  EXPECT_EQ(Written([](MsgpackWriter& w) { w.EventTime(0x5e8f1a2b, 123456789); }),
            Bytes({0xd7, 0x00, 0x5e, 0x8f, 0x1a, 0x2b, 0x07, 0x5b, 0xcd, 0x15}));
}

TEST(MsgpackReaderTest, ReadsWhatTheSpecWrites) {
  EXPECT_EQ(Decoded(Bytes({0xc0})).type, MsgpackValue::Type::kNil);
  EXPECT_TRUE(Decoded(Bytes({0xc3})).boolean);
  EXPECT_EQ(Decoded(Bytes({0xcd, 0x01, 0x00})).uint_value, 256u);
  EXPECT_EQ(Decoded(Bytes({0xd1, 0xff, 0x7f})).int_value, -129);
  EXPECT_EQ(Decoded(Bytes({0xe0})).int_value, -32);
  EXPECT_EQ(Decoded(Bytes({0xd0, 0x05})).type, MsgpackValue::Type::kUint);     // int8 5
  EXPECT_EQ(Decoded(Bytes({0xca, 0x3f, 0xc0, 0x00, 0x00})).float_value, 1.5);  // float32
  EXPECT_EQ(Decoded(Bytes({0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0})).float_value, 1.5);
  EXPECT_EQ(Decoded(Bytes({0xd9, 2, 'h', 'i'})).bytes, "hi");
  EXPECT_EQ(Decoded(Bytes({0xc5, 0x00, 0x01, 'z'})).type, MsgpackValue::Type::kBin);
  const MsgpackValue ext = Decoded(Bytes({0xc7, 0x08, 0x00, 0, 0, 0, 1, 0, 0, 0, 2}));
  EXPECT_EQ(ext.type, MsgpackValue::Type::kExt);
  EXPECT_EQ(ext.ext_type, 0);
  EXPECT_EQ(ext.bytes, Bytes({0, 0, 0, 1, 0, 0, 0, 2}));
  const MsgpackValue map = Decoded(Bytes({0x82, 0xa1, 'a', 0x01, 0xa1, 'b', 0x92, 0xc2, 0xc0}));
  ASSERT_EQ(map.type, MsgpackValue::Type::kMap);
  ASSERT_NE(map.Find("a"), nullptr);
  EXPECT_EQ(map.Find("a")->AsInt(), 1);
  ASSERT_NE(map.Find("b"), nullptr);
  ASSERT_EQ(map.Find("b")->array.size(), 2u);
  EXPECT_EQ(map.Find("b")->array[1].type, MsgpackValue::Type::kNil);
  EXPECT_EQ(map.Find("c"), nullptr);
}

TEST(MsgpackReaderTest, RoundTripsEveryWriterForm) {
  std::string data;
  MsgpackWriter w(data);
  w.ArrayHeader(9);
  w.Int(INT64_MIN);
  w.Uint(UINT64_MAX);
  w.Int(-33);
  w.Double(-0.25);
  w.Str(std::string(300, 's'));
  w.Bin(std::string(70000, 'b'));
  w.EventTime(1, 2);
  w.MapHeader(0);
  w.Bool(false);
  const MsgpackValue v = Decoded(data);
  ASSERT_EQ(v.array.size(), 9u);
  EXPECT_EQ(v.array[0].int_value, INT64_MIN);
  EXPECT_EQ(v.array[1].uint_value, UINT64_MAX);
  EXPECT_EQ(v.array[1].AsInt(), std::nullopt);
  EXPECT_EQ(v.array[2].AsInt(), -33);
  EXPECT_EQ(v.array[3].float_value, -0.25);
  EXPECT_EQ(v.array[4].bytes.size(), 300u);
  EXPECT_EQ(v.array[5].bytes.size(), 70000u);
  EXPECT_EQ(v.array[6].bytes, Bytes({0, 0, 0, 1, 0, 0, 0, 2}));
  EXPECT_EQ(v.array[7].type, MsgpackValue::Type::kMap);
  EXPECT_EQ(v.array[8].type, MsgpackValue::Type::kBool);
}

TEST(MsgpackReaderTest, TruncatedDataAsksForMore) {
  const std::string whole = Bytes({0x92, 0xa3, 'a', 'b', 'c', 0xcd, 0x01, 0x00});
  for (size_t cut = 0; cut < whole.size(); ++cut) {
    size_t consumed = 0;
    absl::StatusOr<MsgpackValue> v =
        DecodeMsgpack(std::string_view(whole).substr(0, cut), consumed);
    EXPECT_EQ(v.status().code(), absl::StatusCode::kOutOfRange) << "cut at " << cut;
  }
  // A huge announced length is "more data needed", not an allocation.
  size_t consumed = 0;
  EXPECT_EQ(DecodeMsgpack(Bytes({0xdd, 0xff, 0xff, 0xff, 0xff}), consumed).status().code(),
            absl::StatusCode::kOutOfRange);
}

TEST(MsgpackReaderTest, ReadsOneObjectOfMany) {
  const std::string two = Bytes({0x01, 0xa1, 'x'});
  size_t consumed = 0;
  absl::StatusOr<MsgpackValue> first = DecodeMsgpack(two, consumed);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(consumed, 1u);
  EXPECT_EQ(first->uint_value, 1u);
}

TEST(MsgpackReaderTest, RefusesWhatIsNotMsgpack) {
  size_t consumed = 0;
  EXPECT_EQ(DecodeMsgpack(Bytes({0xc1}), consumed).status().code(),
            absl::StatusCode::kInvalidArgument);
  const std::string deep(kMaxMsgpackDepth + 2, static_cast<char>(0x91));
  EXPECT_EQ(DecodeMsgpack(deep + Bytes({0xc0}), consumed).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(MsgpackObjectSizeTest, MeasuresAndChecksAsTheDecoderDoes) {
  const std::string whole = Written([](MsgpackWriter& w) {
    w.ArrayHeader(3);
    w.EventTime(1, 2);
    w.MapHeader(2);
    w.Str("a");
    w.Str(std::string(300, 'x'));
    w.Str("b");
    w.Double(0.5);
    w.Bin("bytes");
  });
  absl::StatusOr<size_t> size = MsgpackObjectSize(whole + Bytes({0x01}));
  ASSERT_TRUE(size.ok()) << size.status();
  EXPECT_EQ(*size, whole.size());
  for (size_t cut = 0; cut < whole.size(); ++cut) {
    EXPECT_EQ(MsgpackObjectSize(std::string_view(whole).substr(0, cut)).status().code(),
              absl::StatusCode::kOutOfRange)
        << "cut at " << cut;
  }
  EXPECT_EQ(MsgpackObjectSize(Bytes({0x92, 0x01, 0xc1})).status().code(),
            absl::StatusCode::kInvalidArgument);
  const std::string deep(kMaxMsgpackDepth + 2, static_cast<char>(0x91));
  EXPECT_EQ(MsgpackObjectSize(deep + Bytes({0xc0})).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace meshtel::exporters::fluentd
