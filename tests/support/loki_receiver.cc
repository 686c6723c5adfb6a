#include "tests/support/loki_receiver.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

#include "fmt/format.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/descriptor.pb.h"
#include "google/protobuf/dynamic_message.h"
#include "google/protobuf/message.h"
#include "snappy.h"
#include "tests/support/official_schema.h"

namespace meshtel::testing {

namespace pb = google::protobuf;

namespace {

// Compares the official decode `official` (a logproto.PushRequest) with `own`, field by field.
void Compare(const pb::Message& official, const logproto::PushRequest& own,
             std::vector<std::string>& mismatches) {
  const auto note = [&](std::string what) { mismatches.push_back(std::move(what)); };
  const auto field = [](const pb::Message& m, const char* name) {
    const pb::FieldDescriptor* f = m.GetDescriptor()->FindFieldByName(name);
    if (f == nullptr) std::fprintf(stderr, "official schema: no field %s\n", name);
    return f;
  };
  const auto unknown = [&](const pb::Message& m, const std::string& where) {
    if (m.GetReflection()->GetUnknownFields(m).field_count() != 0) {
      note(fmt::format("{}: fields the official schema does not know", where));
    }
  };
  const pb::Reflection* r = official.GetReflection();
  unknown(official, "PushRequest");
  const pb::FieldDescriptor* streams = field(official, "streams");
  if (r->FieldSize(official, streams) != own.streams_size()) {
    note(fmt::format("streams: official {} own {}", r->FieldSize(official, streams),
                     own.streams_size()));
    return;
  }
  for (int i = 0; i < own.streams_size(); ++i) {
    const pb::Message& stream = r->GetRepeatedMessage(official, streams, i);
    const pb::Reflection* sr = stream.GetReflection();
    const std::string at = fmt::format("streams[{}]", i);
    unknown(stream, at);
    if (sr->GetString(stream, field(stream, "labels")) != own.streams(i).labels()) {
      note(at + ".labels differ");
    }
    if (sr->GetUInt64(stream, field(stream, "hash")) != 0) note(at + ".hash is set");
    const pb::FieldDescriptor* entries = field(stream, "entries");
    if (sr->FieldSize(stream, entries) != own.streams(i).entries_size()) {
      note(at + ".entries: counts differ");
      continue;
    }
    for (int j = 0; j < own.streams(i).entries_size(); ++j) {
      const logproto::EntryAdapter& mine = own.streams(i).entries(j);
      const pb::Message& entry = sr->GetRepeatedMessage(stream, entries, j);
      const pb::Reflection* er = entry.GetReflection();
      const std::string eat = fmt::format("{}.entries[{}]", at, j);
      unknown(entry, eat);
      const pb::Message& ts = er->GetMessage(entry, field(entry, "timestamp"));
      if (ts.GetReflection()->GetInt64(ts, field(ts, "seconds")) != mine.timestamp().seconds() ||
          ts.GetReflection()->GetInt32(ts, field(ts, "nanos")) != mine.timestamp().nanos()) {
        note(eat + ".timestamp differs");
      }
      if (er->GetString(entry, field(entry, "line")) != mine.line()) note(eat + ".line differs");
      if (er->FieldSize(entry, field(entry, "parsed")) != 0) note(eat + ".parsed is set");
      const pb::FieldDescriptor* metadata = field(entry, "structuredMetadata");
      if (er->FieldSize(entry, metadata) != mine.structuredmetadata_size()) {
        note(eat + ".structuredMetadata: counts differ");
        continue;
      }
      for (int k = 0; k < mine.structuredmetadata_size(); ++k) {
        const pb::Message& pair = er->GetRepeatedMessage(entry, metadata, k);
        const pb::Reflection* pr = pair.GetReflection();
        if (pr->GetString(pair, field(pair, "name")) != mine.structuredmetadata(k).name() ||
            pr->GetString(pair, field(pair, "value")) != mine.structuredmetadata(k).value()) {
          note(fmt::format("{}.structuredMetadata[{}] differs", eat, k));
        }
      }
    }
  }
}

}  // namespace

std::string OfficialLokiSchemaUnavailableReason() {
  return NewOfficialMessage("logproto.PushRequest").unavailable;
}

LokiReceiver::LokiReceiver()
    : server_([this](const TestHttpRequest& request) { return Handle(request); }) {}

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

std::string LokiReceiver::url() const {
  return fmt::format("http://127.0.0.1:{}/loki/api/v1/push", port());
}

TestHttpReply LokiReceiver::Handle(const TestHttpRequest& request) {
  LokiPush push;
  push.target = request.target;
  push.headers = request.headers;
  push.body = request.body;
  std::string serialized;
  if (!snappy::Uncompress(request.body.data(), request.body.size(), &serialized)) {
    push.decode_error = "the body is not snappy block format";
  } else if (!push.request.ParseFromString(serialized)) {
    push.decode_error = "the body is not a PushRequest (project subset)";
  } else if (OfficialMessage official = NewOfficialMessage("logproto.PushRequest");
             official.unavailable.empty()) {
    push.official_checked = true;
    if (!official.message->ParseFromString(serialized)) {
      push.official_mismatches.push_back("the official schema does not parse the body");
    } else {
      Compare(*official.message, push.request, push.official_mismatches);
    }
  }
  std::lock_guard lock(mutex_);
  push.answered = reply_.hang ? 0 : reply_.status;
  pushes_.push_back(std::move(push));
  return reply_;
}

}  // namespace meshtel::testing
