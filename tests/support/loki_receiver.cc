#include "tests/support/loki_receiver.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

#include "fmt/format.h"
#include "google/protobuf/arena.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/descriptor.pb.h"
#include "google/protobuf/dynamic_message.h"
#include "google/protobuf/message.h"
#include "snappy.h"
#include "tests/support/official_schema.h"

namespace meshtel::testing {

namespace pb = google::protobuf;

namespace {

const pb::FieldDescriptor* Field(const pb::Descriptor* type, const char* name) {
  const pb::FieldDescriptor* f = type->FindFieldByName(name);
  if (f == nullptr) std::fprintf(stderr, "official schema: no field %s\n", name);
  return f;
}

// The official schema's fields the comparison reads, looked up once per push.
struct OfficialFields {
  explicit OfficialFields(const pb::Descriptor* push) {
    streams = Field(push, "streams");
    const pb::Descriptor* stream = streams->message_type();
    labels = Field(stream, "labels");
    hash = Field(stream, "hash");
    entries = Field(stream, "entries");
    const pb::Descriptor* entry = entries->message_type();
    timestamp = Field(entry, "timestamp");
    seconds = Field(timestamp->message_type(), "seconds");
    nanos = Field(timestamp->message_type(), "nanos");
    line = Field(entry, "line");
    parsed = Field(entry, "parsed");
    metadata = Field(entry, "structuredMetadata");
    name = Field(metadata->message_type(), "name");
    value = Field(metadata->message_type(), "value");
  }
  const pb::FieldDescriptor *streams, *labels, *hash, *entries, *timestamp, *seconds, *nanos, *line,
      *parsed, *metadata, *name, *value;
};

// Compares the official decode `official` (a logproto.PushRequest) with `own`, field by field.
void Compare(const pb::Message& official, const logproto::PushRequest& own,
             std::vector<std::string>& mismatches) {
  const auto note = [&](std::string what) { mismatches.push_back(std::move(what)); };
  const OfficialFields f(official.GetDescriptor());
  const auto unknown = [&](const pb::Message& m, const auto& where) {
    if (m.GetReflection()->GetUnknownFields(m).field_count() != 0) {
      note(fmt::format("{}: fields the official schema does not know", where()));
    }
  };
  const pb::Reflection* r = official.GetReflection();
  unknown(official, [] { return std::string("PushRequest"); });
  if (r->FieldSize(official, f.streams) != own.streams_size()) {
    note(fmt::format("streams: official {} own {}", r->FieldSize(official, f.streams),
                     own.streams_size()));
    return;
  }
  std::string scratch;
  for (int i = 0; i < own.streams_size(); ++i) {
    const pb::Message& stream = r->GetRepeatedMessage(official, f.streams, i);
    const pb::Reflection* sr = stream.GetReflection();
    const auto at = [i] { return fmt::format("streams[{}]", i); };
    unknown(stream, at);
    if (sr->GetStringReference(stream, f.labels, &scratch) != own.streams(i).labels()) {
      note(at() + ".labels differ");
    }
    if (sr->GetUInt64(stream, f.hash) != 0) note(at() + ".hash is set");
    if (sr->FieldSize(stream, f.entries) != own.streams(i).entries_size()) {
      note(at() + ".entries: counts differ");
      continue;
    }
    for (int j = 0; j < own.streams(i).entries_size(); ++j) {
      const logproto::EntryAdapter& mine = own.streams(i).entries(j);
      const pb::Message& entry = sr->GetRepeatedMessage(stream, f.entries, j);
      const pb::Reflection* er = entry.GetReflection();
      const auto eat = [&at, j] { return fmt::format("{}.entries[{}]", at(), j); };
      unknown(entry, eat);
      const pb::Message& ts = er->GetMessage(entry, f.timestamp);
      if (ts.GetReflection()->GetInt64(ts, f.seconds) != mine.timestamp().seconds() ||
          ts.GetReflection()->GetInt32(ts, f.nanos) != mine.timestamp().nanos()) {
        note(eat() + ".timestamp differs");
      }
      if (er->GetStringReference(entry, f.line, &scratch) != mine.line()) {
        note(eat() + ".line differs");
      }
      if (er->FieldSize(entry, f.parsed) != 0) note(eat() + ".parsed is set");
      if (er->FieldSize(entry, f.metadata) != mine.structuredmetadata_size()) {
        note(eat() + ".structuredMetadata: counts differ");
        continue;
      }
      for (int k = 0; k < mine.structuredmetadata_size(); ++k) {
        const pb::Message& pair = er->GetRepeatedMessage(entry, f.metadata, k);
        const pb::Reflection* pr = pair.GetReflection();
        if (pr->GetString(pair, f.name) != mine.structuredmetadata(k).name() ||
            pr->GetString(pair, f.value) != mine.structuredmetadata(k).value()) {
          note(fmt::format("{}.structuredMetadata[{}] differs", eat(), k));
        }
      }
    }
  }
}

}  // namespace

std::string OfficialLokiSchemaUnavailableReason() {
  return NewOfficialMessage("logproto.PushRequest").unavailable;
}

LokiReceiver::LokiReceiver(Options options)
    : options_(options),
      server_([this](const TestHttpRequest& request) { return Handle(request); }, options.tls) {}

void LokiReceiver::Answer(int status, std::vector<std::pair<std::string, std::string>> headers,
                          std::string body) {
  std::lock_guard lock(mutex_);
  reply_ = TestHttpReply{};
  reply_.status = status;
  reply_.headers = std::move(headers);
  reply_.body = std::move(body);
}

void LokiReceiver::Hang() {
  std::lock_guard lock(mutex_);
  reply_.hang = true;
}

std::vector<LokiPush> LokiReceiver::Pushes() const {
  std::lock_guard lock(mutex_);
  return pushes_;
}

LokiSummary LokiReceiver::Summary() const {
  std::lock_guard lock(mutex_);
  return summary_;
}

std::string LokiReceiver::url() const {
  return fmt::format("{}://127.0.0.1:{}/loki/api/v1/push", options_.tls ? "https" : "http", port());
}

bool LokiReceiver::OfficialCheckDue() {
  return decoded_pushes_++ % std::max<uint64_t>(options_.official_check_every, 1) == 0;
}

TestHttpReply LokiReceiver::Handle(const TestHttpRequest& request) {
  LokiPush push;
  // Decoded into an arena when the push is not kept (the same decode, fewer allocations).
  pb::Arena arena;
  logproto::PushRequest* own = options_.keep_pushes
                                   ? &push.request
                                   : pb::Arena::CreateMessage<logproto::PushRequest>(&arena);
  if (options_.keep_pushes) {
    push.target = request.target;
    push.headers = request.headers;
    push.body = request.body;
  }
  std::string serialized;
  if (!snappy::Uncompress(request.body.data(), request.body.size(), &serialized)) {
    push.decode_error = "the body is not snappy block format";
  } else if (!own->ParseFromString(serialized)) {
    push.decode_error = "the body is not a PushRequest (project subset)";
  } else if (OfficialMessage official = NewOfficialMessage("logproto.PushRequest");
             official.unavailable.empty() && OfficialCheckDue()) {
    push.official_checked = true;
    pb::Message* decoded = official.message->New(&arena);
    if (!decoded->ParseFromString(serialized)) {
      push.official_mismatches.push_back("the official schema does not parse the body");
    } else {
      Compare(*decoded, *own, push.official_mismatches);
    }
  }
  uint64_t lines = 0;
  if (push.decode_error.empty()) {
    for (const logproto::StreamAdapter& stream : own->streams()) lines += stream.entries_size();
  }
  std::lock_guard lock(mutex_);
  push.answered = reply_.hang ? 0 : reply_.status;
  ++summary_.pushes;
  summary_.lines += lines;
  if (push.official_checked) ++summary_.official_checked;
  if (!push.decode_error.empty() && summary_.decode_errors++ == 0) {
    summary_.first_decode_error = push.decode_error;
  }
  if (!push.official_mismatches.empty() && summary_.mismatched++ == 0) {
    summary_.first_mismatch = push.official_mismatches.front();
  }
  if (options_.keep_pushes) pushes_.push_back(std::move(push));
  return reply_;
}

}  // namespace meshtel::testing
