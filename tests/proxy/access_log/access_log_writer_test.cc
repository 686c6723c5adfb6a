#include "proxy/access_log/access_log_writer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "tests/support/process.h"

namespace meshtel::proxy {
namespace {

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

meshtel::v1::RequestRecord Record(int index) {
  meshtel::v1::RequestRecord record;
  record.set_start_time_unix_nano(1787220000123000000ull + static_cast<uint64_t>(index) * 1000000);
  record.set_method("GET");
  record.set_path("/item/" + std::to_string(index));
  record.set_protocol("HTTP/1.1");
  record.set_response_code(200);
  record.set_request_id("req-" + std::to_string(index));
  record.set_authority("cart:8080");
  record.set_upstream_host("127.0.0.1:9000");
  record.set_duration_ns(12'500'000);
  return record;
}

AccessLogConfig Config(const std::string& path) {
  AccessLogConfig config;
  config.path = path;
  return config;
}

std::unique_ptr<AccessLogWriter> OpenOrDie(const AccessLogConfig& config) {
  auto writer = AccessLogWriter::Open(config);
  EXPECT_TRUE(writer.ok()) << writer.status();
  return writer.ok() ? *std::move(writer) : nullptr;
}

TEST(AccessLogWriterTest, WritesIstioDefaultTextLines) {
  const std::string path = testing::MakeTempDir("access-log") + "/access.log";
  auto writer = OpenOrDie(Config(path));
  ASSERT_NE(writer, nullptr);
  for (int i = 0; i < 3; ++i) writer->Append(Record(i));
  writer->Publish();
  writer->Flush();
  EXPECT_EQ(writer->written_lines(), 3u);
  EXPECT_EQ(writer->dropped_lines(), 0u);
  const std::vector<std::string> lines = Lines(ReadAll(path));
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[1],
            "[2026-08-20T10:00:00.124Z] \"GET /item/1 HTTP/1.1\" 200 - - - \"-\" 0 0 12 - \"-\" "
            "\"-\" \"req-1\" \"cart:8080\" \"127.0.0.1:9000\" - - - - - -");
  writer->Shutdown();
  EXPECT_EQ(writer->written_lines(), 3u);
}

TEST(AccessLogWriterTest, JsonEncodingAndSerializedRecords) {
  const std::string path = testing::MakeTempDir("access-log") + "/access.json";
  AccessLogConfig config = Config(path);
  config.render.encoding = collector::AccessLogEncoding::kJson;
  config.render.json_format = {{"code", "%RESPONSE_CODE%"}, {"id", "%REQ(X-REQUEST-ID)%"}};
  auto writer = OpenOrDie(config);
  ASSERT_NE(writer, nullptr);
  writer->AppendSerialized(Record(7).SerializeAsString());
  writer->AppendSerialized("\xff\xff not a record");
  writer->Publish();
  writer->Shutdown();
  EXPECT_EQ(ReadAll(path), "{\"code\":200,\"id\":\"req-7\"}\n");
  EXPECT_EQ(writer->written_lines(), 1u);
  EXPECT_EQ(writer->dropped_lines(), 1u);  // the bytes that did not decode
}

TEST(AccessLogWriterTest, EveryLineEndsWithANewline) {
  const std::string path = testing::MakeTempDir("access-log") + "/access.log";
  AccessLogConfig config = Config(path);
  config.render.format = "%REQ(:METHOD)% %RESPONSE_CODE%";  // no newline of its own
  auto writer = OpenOrDie(config);
  ASSERT_NE(writer, nullptr);
  writer->Append(Record(1));
  writer->Append(Record(2));
  writer->Publish();
  writer->Shutdown();
  EXPECT_EQ(ReadAll(path), "GET 200\nGET 200\n");
}

TEST(AccessLogWriterTest, AppendsAndSurvivesCopyTruncateAndRenameRotation) {
  const std::string dir = testing::MakeTempDir("access-log");
  const std::string path = dir + "/access.log";
  testing::WriteFile(path, "earlier line\n");
  AccessLogConfig config = Config(path);
  config.render.format = "%REQ(:PATH)%\n";
  auto writer = OpenOrDie(config);
  ASSERT_NE(writer, nullptr);
  writer->Append(Record(1));
  writer->Publish();
  writer->Flush();
  EXPECT_EQ(ReadAll(path), "earlier line\n/item/1\n");

  // copytruncate: the file is copied and truncated under the open descriptor.
  ASSERT_EQ(truncate(path.c_str(), 0), 0);
  writer->Append(Record(2));
  writer->Publish();
  writer->Flush();
  EXPECT_EQ(ReadAll(path), "/item/2\n");  // at the start, no hole of zeros

  // Rotation by rename, then Reopen() (SIGUSR1 in the proxy).
  ASSERT_EQ(rename(path.c_str(), (path + ".1").c_str()), 0);
  writer->Append(Record(3));
  writer->Publish();
  writer->Flush();
  writer->Reopen();
  writer->Append(Record(4));
  writer->Publish();
  writer->Flush();
  writer->Shutdown();
  EXPECT_EQ(ReadAll(path + ".1"), "/item/2\n/item/3\n");
  EXPECT_EQ(ReadAll(path), "/item/4\n");
  EXPECT_EQ(writer->reopens(), 1u);
  EXPECT_EQ(writer->written_lines(), 4u);
}

// A reader that never reads stands for a disk that stopped: the writer thread blocks in
// write(2), yet Append()/Publish() keep returning, drop what is over max_buffered_bytes and
// count it; once the reader drains, every line is accounted for exactly once.
TEST(AccessLogWriterTest, BlockedOutputDropsAndCountsInsteadOfWaiting) {
  const std::string path = testing::MakeTempDir("access-log") + "/fifo";
  ASSERT_EQ(mkfifo(path.c_str(), 0600), 0);
  const int reader = open(path.c_str(), O_RDONLY | O_NONBLOCK);
  ASSERT_GE(reader, 0);
  AccessLogConfig config = Config(path);
  config.max_buffered_bytes = 64 << 10;
  auto writer = OpenOrDie(config);
  ASSERT_NE(writer, nullptr);

  // Far more than the pipe (64 KiB) and the buffer can hold: ~200 bytes x 20000 = 4 MB.
  constexpr int kLines = 20000;
  for (int i = 0; i < kLines; ++i) {
    writer->Append(Record(i));
    if (i % 100 == 99) writer->Publish();
  }
  writer->Publish();
  EXPECT_GT(writer->dropped_lines(), 0u);

  // Drain the pipe until the writer thread has written everything it kept: once Flush() has
  // returned, everything is in the pipe, so one more drain after seeing that gets it all.
  std::string received;
  char buffer[65536];
  std::atomic<bool> flushed{false};
  std::thread flusher([&] {
    writer->Flush();
    flushed.store(true);
  });
  for (;;) {
    const bool done = flushed.load();
    ssize_t n;
    while ((n = read(reader, buffer, sizeof(buffer))) > 0) {
      received.append(buffer, static_cast<size_t>(n));
    }
    if (done) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  flusher.join();
  writer->Shutdown();
  close(reader);
  EXPECT_EQ(writer->written_lines() + writer->dropped_lines(), static_cast<uint64_t>(kLines));
  EXPECT_EQ(Lines(received).size(), writer->written_lines());
  EXPECT_GT(writer->written_lines(), 0u);
}

TEST(AccessLogWriterTest, CountsRecordsDroppedBeforeTheWriter) {
  const std::string path = testing::MakeTempDir("access-log") + "/access.log";
  auto writer = OpenOrDie(Config(path));
  ASSERT_NE(writer, nullptr);
  writer->CountDropped(5);
  EXPECT_EQ(writer->dropped_lines(), 5u);
}

TEST(AccessLogWriterTest, OpenErrorsNameTheField) {
  auto missing_dir = AccessLogWriter::Open(Config("/nonexistent-dir-meshtel/access.log"));
  ASSERT_FALSE(missing_dir.ok());
  EXPECT_EQ(missing_dir.status().message(),
            "access_log.path: cannot open '/nonexistent-dir-meshtel/access.log': No such file or "
            "directory");
  AccessLogConfig bad_format = Config(testing::MakeTempDir("access-log") + "/access.log");
  bad_format.render.format = "%REQ(:METHOD)% %NOPE%";
  auto unknown = AccessLogWriter::Open(bad_format);
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().message(), "access_log.format: unknown operator %NOPE% at offset 15");
}

}  // namespace
}  // namespace meshtel::proxy
