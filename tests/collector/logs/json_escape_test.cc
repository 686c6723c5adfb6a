#include "collector/logs/json_escape.h"

#include <string>

#include "gtest/gtest.h"

namespace meshtel::collector {
namespace {

std::string Escaped(std::string_view text) {
  std::string out = "prefix|";
  AppendJsonEscaped(out, text);
  EXPECT_EQ(out.substr(0, 7), "prefix|");
  return out.substr(7);
}

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";

TEST(JsonEscapeTest, PlainAsciiIsCopied) {
  EXPECT_EQ(Escaped("GET /cart?x=1 HTTP/1.1 ~"), "GET /cart?x=1 HTTP/1.1 ~");
  EXPECT_EQ(Escaped(""), "");
}

TEST(JsonEscapeTest, QuoteAndBackslashAreEscaped) {
  EXPECT_EQ(Escaped(R"(say "hi" \ bye)"), R"(say \"hi\" \\ bye)");
}

TEST(JsonEscapeTest, ControlCharactersAreEscaped) {
  EXPECT_EQ(Escaped("a\nb\rc\td\be\ff"), R"(a\nb\rc\td\be\ff)");
  EXPECT_EQ(Escaped(std::string("\x00\x01\x1f", 3)), R"(\u0000\u0001\u001f)");
  // DEL is not a control character for JSON.
  EXPECT_EQ(Escaped("\x7f"), "\x7f");
}

TEST(JsonEscapeTest, ValidUtf8IsCopied) {
  const std::string text =
      "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 \xEF\xBF\xBF \xF4\x8F\xBF\xBF";
  EXPECT_EQ(Escaped(text), text);
}

TEST(JsonEscapeTest, InvalidUtf8IsReplacedPerByte) {
  // A lone continuation byte, a truncated sequence at the end, an invalid lead byte.
  EXPECT_EQ(Escaped("a\x80z"), "a" + std::string(kReplacement) + "z");
  EXPECT_EQ(Escaped("a\xE2\x82"), "a" + std::string(kReplacement) + std::string(kReplacement));
  EXPECT_EQ(Escaped("\xFF"), kReplacement);
  // Overlong '/' (C0 AF), overlong 3-byte (E0 80 AF), a surrogate (ED A0 80), above U+10FFFF.
  EXPECT_EQ(Escaped("\xC0\xAF"), std::string(kReplacement) + std::string(kReplacement));
  EXPECT_EQ(Escaped("\xE0\x80\xAF").find("\xE0"), std::string::npos);
  EXPECT_EQ(Escaped("\xED\xA0\x80").find("\xED"), std::string::npos);
  EXPECT_EQ(Escaped("\xF4\x90\x80\x80").find("\xF4"), std::string::npos);
  // A truncated sequence followed by ASCII keeps the ASCII.
  EXPECT_EQ(Escaped("\xE2\x82x"), std::string(kReplacement) + std::string(kReplacement) + "x");
}

TEST(JsonEscapeTest, EscapeTailLeavesTheHeadAlone) {
  std::string out = "\"head\":\"";
  const size_t from = out.size();
  out.append("a\"b\n");
  EscapeJsonTail(out, from);
  EXPECT_EQ(out, R"("head":"a\"b\n)");

  std::string clean = "abc";
  EscapeJsonTail(clean, 1);
  EXPECT_EQ(clean, "abc");
  EscapeJsonTail(clean, 3);
  EXPECT_EQ(clean, "abc");
}

TEST(JsonEscapeTest, ReplaceInvalidUtf8KeepsValidTextAndReplacesPerByte) {
  std::string valid = "GET /caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 \"quoted\"\n";
  const std::string before = valid;
  EXPECT_FALSE(ReplaceInvalidUtf8(valid));
  EXPECT_EQ(valid, before);  // control characters and quotes are not JSON-escaped here

  std::string broken = "ua=\xFF\xC3 ok\xE2\x82";
  EXPECT_TRUE(ReplaceInvalidUtf8(broken));
  const std::string r(kReplacement);
  EXPECT_EQ(broken, "ua=" + r + r + " ok" + r + r);
  // The repaired text is valid: a second pass changes nothing.
  EXPECT_FALSE(ReplaceInvalidUtf8(broken));

  std::string surrogate = "\xED\xA0\x80";
  EXPECT_TRUE(ReplaceInvalidUtf8(surrogate));
  EXPECT_EQ(surrogate, r + r + r);
}

// ASCII is skipped eight bytes at a time: a bad byte or a valid sequence at any offset of a long
// line is still seen.
TEST(JsonEscapeTest, ReplaceInvalidUtf8FindsBytesAtEveryOffset) {
  const std::string r(kReplacement);
  for (size_t at = 0; at < 40; ++at) {
    std::string line(40, 'a');
    line[at] = '\xFF';
    EXPECT_TRUE(ReplaceInvalidUtf8(line)) << at;
    EXPECT_EQ(line, std::string(at, 'a') + r + std::string(39 - at, 'a'));
    std::string valid = std::string(at, 'b') + "\xC3\xA9" + std::string(40, 'b');
    EXPECT_FALSE(ReplaceInvalidUtf8(valid)) << at;
    std::string cut = std::string(at, 'c') + "\xE2\x82";
    EXPECT_TRUE(ReplaceInvalidUtf8(cut)) << at;
    EXPECT_EQ(cut, std::string(at, 'c') + r + r);
  }
}

}  // namespace
}  // namespace meshtel::collector
