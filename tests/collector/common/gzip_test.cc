#include "collector/common/gzip.h"

#include <string>

#include "gtest/gtest.h"

namespace meshtel::common {
namespace {

constexpr size_t kNoLimit = size_t{1} << 40;

// `printf 'hello meshtel\n' | gzip -n -9`: written by the gzip tool, not by this code.
const unsigned char kGzipToolOutput[] = {0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02,
                                         0x03, 0xcb, 0x48, 0xcd, 0xc9, 0xc9, 0x57, 0xc8, 0x4d,
                                         0x2d, 0xce, 0x28, 0x49, 0xcd, 0xe1, 0x02, 0x00, 0xc3,
                                         0x1f, 0x20, 0x9d, 0x0e, 0x00, 0x00, 0x00};

std::string ToolOutput() {
  return std::string(reinterpret_cast<const char*>(kGzipToolOutput), sizeof(kGzipToolOutput));
}

TEST(GzipTest, DecompressesWhatTheGzipToolWrote) {
  absl::StatusOr<std::string> plain = GzipDecompress(ToolOutput(), kNoLimit);
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_EQ(*plain, "hello meshtel\n");
}

TEST(GzipTest, ConcatenatedMembersDecompressToTheirConcatenation) {
  absl::StatusOr<std::string> plain = GzipDecompress(ToolOutput() + ToolOutput(), kNoLimit);
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_EQ(*plain, "hello meshtel\nhello meshtel\n");
}

TEST(GzipTest, RoundTripsAndShrinksRepetitiveTextAtEveryLevel) {
  std::string body;
  for (int i = 0; i < 20000; ++i) {
    body += "istio_requests_total{reporter=\"source\",response_code=\"" + std::to_string(i % 7) +
            "\"} " + std::to_string(i) + "\n";
  }
  for (int level : {1, -1, 9}) {
    absl::StatusOr<std::string> compressed = GzipCompress(body, level);
    ASSERT_TRUE(compressed.ok()) << compressed.status();
    EXPECT_EQ(static_cast<unsigned char>((*compressed)[0]), 0x1f);  // gzip magic
    EXPECT_EQ(static_cast<unsigned char>((*compressed)[1]), 0x8b);
    EXPECT_LT(compressed->size(), body.size() / 4);
    absl::StatusOr<std::string> plain = GzipDecompress(*compressed, body.size());
    ASSERT_TRUE(plain.ok()) << plain.status();
    EXPECT_EQ(*plain, body);
  }
}

TEST(GzipTest, EmptyDataRoundTrips) {
  absl::StatusOr<std::string> compressed = GzipCompress("");
  ASSERT_TRUE(compressed.ok()) << compressed.status();
  absl::StatusOr<std::string> plain = GzipDecompress(*compressed, 0);
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_EQ(*plain, "");
}

TEST(GzipTest, NotGzipCutShortAndEmptyInputAreInvalidArgument) {
  EXPECT_EQ(GzipDecompress("plain text, not gzip", kNoLimit).status().code(),
            absl::StatusCode::kInvalidArgument);
  const std::string whole = ToolOutput();
  EXPECT_EQ(GzipDecompress(whole.substr(0, whole.size() - 5), kNoLimit).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(GzipDecompress("", kNoLimit).status().code(), absl::StatusCode::kInvalidArgument);
  // A good member followed by garbage.
  EXPECT_EQ(GzipDecompress(whole + "junk", kNoLimit).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(GzipTest, StopsAtTheOutputLimitWithoutInflatingTheRest) {
  // 256 MiB of zeros compress to about 256 KiB: decompression must stop at the limit.
  const std::string zeros(size_t{256} << 20, '\0');
  absl::StatusOr<std::string> bomb = GzipCompress(zeros, 9);
  ASSERT_TRUE(bomb.ok()) << bomb.status();
  absl::StatusOr<std::string> plain = GzipDecompress(*bomb, size_t{1} << 20);
  EXPECT_EQ(plain.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(plain.status().message().find("1048576"), std::string::npos) << plain.status();
  // Exactly at the limit is fine.
  absl::StatusOr<std::string> exact = GzipDecompress(ToolOutput(), 14);
  ASSERT_TRUE(exact.ok()) << exact.status();
  EXPECT_EQ(GzipDecompress(ToolOutput(), 13).status().code(), absl::StatusCode::kResourceExhausted);
}

}  // namespace
}  // namespace meshtel::common
