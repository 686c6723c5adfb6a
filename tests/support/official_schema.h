#pragma once
// Test support: the official upstream schemas (../shared/specs/protos), compiled at test time into
// a descriptor set by that folder's helper (official-descriptors.py) and loaded into one
// descriptor pool, once per process. Tests decode what the project sends with them, beside the
// project's own wire-compatible subsets, so a field-number mistake cannot pass unnoticed.
//
// Threading: safe from any thread (the pool is built once, on first use).

#include <memory>
#include <string>

#include "google/protobuf/message.h"

namespace meshtel::testing {

struct OfficialMessage {
  // Why the official schema cannot be used here (../shared absent, the helper failed, the type
  // is not in it), or empty.
  std::string unavailable;
  // A new, empty message of the requested type when available.
  std::unique_ptr<google::protobuf::Message> message;
};

// A new empty message of the official type `full_name` (e.g. "logproto.PushRequest"), or why
// there is none.
OfficialMessage NewOfficialMessage(const std::string& full_name);

}  // namespace meshtel::testing
