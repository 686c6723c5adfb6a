#include "collector/logs/json_escape.h"

#include <cstdint>
#include <cstring>
#include <utility>

namespace meshtel::collector {
namespace {

constexpr std::string_view kReplacementCharacter = "\xEF\xBF\xBD";  // U+FFFD in UTF-8

// True for a byte that may be copied as it is: printable ASCII other than '"' and '\'.
bool IsPlainByte(unsigned char c) { return c >= 0x20 && c < 0x80 && c != '"' && c != '\\'; }

// The length of the valid UTF-8 sequence starting at text[i] (a byte >= 0x80), or 0.
size_t ValidSequenceLength(std::string_view text, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char lead = byte(i);
  size_t length = 0;
  unsigned char low = 0x80;  // allowed range of the second byte
  unsigned char high = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    if (lead == 0xE0) low = 0xA0;   // no overlong forms
    if (lead == 0xED) high = 0x9F;  // no surrogates
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    if (lead == 0xF0) low = 0x90;   // no overlong forms
    if (lead == 0xF4) high = 0x8F;  // nothing above U+10FFFF
  } else {
    return 0;
  }
  if (i + length > text.size()) return 0;
  if (byte(i + 1) < low || byte(i + 1) > high) return 0;
  for (size_t k = 2; k < length; ++k) {
    if (byte(i + k) < 0x80 || byte(i + k) > 0xBF) return 0;
  }
  return length;
}

bool NeedsEscaping(std::string_view text) {
  for (char c : text) {
    if (!IsPlainByte(static_cast<unsigned char>(c))) return true;
  }
  return false;
}

}  // namespace

void AppendJsonEscaped(std::string& out, std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  size_t i = 0;
  while (i < text.size()) {
    // Copy the longest run of plain bytes at once.
    size_t run = i;
    while (run < text.size() && IsPlainByte(static_cast<unsigned char>(text[run]))) ++run;
    out.append(text.data() + i, run - i);
    i = run;
    if (i == text.size()) break;
    const auto c = static_cast<unsigned char>(text[i]);
    switch (c) {
      case '"':
        out.append("\\\"");
        break;
      case '\\':
        out.append("\\\\");
        break;
      case '\b':
        out.append("\\b");
        break;
      case '\f':
        out.append("\\f");
        break;
      case '\n':
        out.append("\\n");
        break;
      case '\r':
        out.append("\\r");
        break;
      case '\t':
        out.append("\\t");
        break;
      default:
        if (c < 0x20) {
          const char escape[] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xF]};
          out.append(escape, sizeof(escape));
        } else if (const size_t length = ValidSequenceLength(text, i); length > 0) {
          out.append(text.data() + i, length);
          i += length;
          continue;
        } else {
          out.append(kReplacementCharacter);
        }
    }
    ++i;
  }
}

void EscapeJsonTail(std::string& out, size_t from) {
  if (from >= out.size() || !NeedsEscaping(std::string_view(out).substr(from))) return;
  thread_local std::string tail;
  tail.assign(out, from);
  out.resize(from);
  AppendJsonEscaped(out, tail);
}

bool ReplaceInvalidUtf8(std::string& text) {
  const std::string_view view(text);
  size_t i = 0;
  // Most text is valid: find the first invalid byte without copying anything (and most of it is
  // ASCII: eight bytes at a time while no byte has its top bit set).
  while (i < view.size()) {
    uint64_t word = 0;
    if (view.size() - i >= sizeof(word) &&
        (std::memcpy(&word, view.data() + i, sizeof(word)), (word & 0x8080808080808080u) == 0)) {
      i += sizeof(word);
    } else if (static_cast<unsigned char>(view[i]) < 0x80) {
      ++i;
    } else if (const size_t length = ValidSequenceLength(view, i); length > 0) {
      i += length;
    } else {
      break;
    }
  }
  if (i == view.size()) return false;
  std::string repaired(view.substr(0, i));
  repaired.reserve(view.size() + 8);
  while (i < view.size()) {
    if (static_cast<unsigned char>(view[i]) < 0x80) {
      repaired.push_back(view[i]);
      ++i;
    } else if (const size_t length = ValidSequenceLength(view, i); length > 0) {
      repaired.append(view.substr(i, length));
      i += length;
    } else {
      repaired.append(kReplacementCharacter);
      ++i;
    }
  }
  text = std::move(repaired);
  return true;
}

}  // namespace meshtel::collector
