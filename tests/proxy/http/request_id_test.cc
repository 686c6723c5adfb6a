#include "proxy/http/request_id.h"

#include <set>

#include "gtest/gtest.h"

namespace meshtel::proxy {
namespace {

TEST(RequestIdTest, IsCanonicalLowerCaseUuidV4) {
  for (int i = 0; i < 1000; ++i) {
    const std::string id = NewRequestId();
    ASSERT_EQ(id.size(), 36u);
    for (size_t j = 0; j < id.size(); ++j) {
      if (j == 8 || j == 13 || j == 18 || j == 23) {
        EXPECT_EQ(id[j], '-') << id;
      } else {
        EXPECT_TRUE((id[j] >= '0' && id[j] <= '9') || (id[j] >= 'a' && id[j] <= 'f')) << id;
      }
    }
    EXPECT_EQ(id[14], '4') << id;  // version; Envoy packs its trace decision here
    EXPECT_NE(std::string("89ab").find(id[19]), std::string::npos) << id;  // RFC 4122 variant
  }
}

TEST(RequestIdTest, WrittenIdHasTheSameFormAsANewOne) {
  char id[kRequestIdSize + 1];
  id[kRequestIdSize] = '!';  // nothing is written past the id
  WriteRequestId(id);
  EXPECT_EQ(id[kRequestIdSize], '!');
  const std::string text(id, kRequestIdSize);
  for (size_t j = 0; j < text.size(); ++j) {
    if (j == 8 || j == 13 || j == 18 || j == 23) {
      EXPECT_EQ(text[j], '-') << text;
    } else {
      EXPECT_TRUE((text[j] >= '0' && text[j] <= '9') || (text[j] >= 'a' && text[j] <= 'f')) << text;
    }
  }
  EXPECT_EQ(text[14], '4') << text;
  EXPECT_NE(text, NewRequestId());
}

TEST(RequestIdTest, IsUnique) {
  std::set<std::string> seen;
  for (int i = 0; i < 10000; ++i) EXPECT_TRUE(seen.insert(NewRequestId()).second);
}

}  // namespace
}  // namespace meshtel::proxy
