#include "client/json_format.h"

#include <string>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace evlog::client {
namespace {

ConsumedRecord MakeRecord(std::string key, std::string value) {
  return ConsumedRecord{.topic = std::string(1, 't'),
                        .partition = 0,
                        .offset = 17,
                        .timestamp_ms = 1700000000000,
                        .key = std::move(key),
                        .value = std::move(value)};
}

TEST(FormatRecordJsonTest, MatchesTheContractExampleByteForByte) {
  EXPECT_EQ(FormatRecordJson(MakeRecord("k", "v")),
            R"({"topic":"t","partition":0,"offset":17,"timestamp_ms":1700000000000,)"
            R"("key":"k","value":"v","headers":{}})");
}

TEST(FormatRecordJsonTest, EmptyKeyIsAnEmptyString) {
  EXPECT_EQ(FormatRecordJson(MakeRecord("", "v")),
            R"({"topic":"t","partition":0,"offset":17,"timestamp_ms":1700000000000,)"
            R"("key":"","value":"v","headers":{}})");
}

TEST(FormatRecordJsonTest, EscapesQuotesBackslashesAndControlCharacters) {
  const std::string line = FormatRecordJson(MakeRecord("a\"b", "x\\y\n\t\x01z"));
  EXPECT_NE(line.find(R"("key":"a\"b")"), std::string::npos) << line;
  EXPECT_NE(line.find(R"("value":"x\\y\n\t\u0001z")"), std::string::npos) << line;
  EXPECT_EQ(line.find('\n'), std::string::npos) << "a JSON line holds no raw newline";
}

TEST(FormatRecordJsonTest, WritesValidUtf8AsIs) {
  const std::string line = FormatRecordJson(MakeRecord("clé", "日本語 🚀"));
  EXPECT_NE(line.find(R"("key":"clé")"), std::string::npos) << line;
  EXPECT_NE(line.find(R"("value":"日本語 🚀")"), std::string::npos) << line;
}

TEST(FormatRecordJsonTest, NonUtf8ValueBecomesValueB64) {
  const std::string line = FormatRecordJson(MakeRecord("k", std::string("\xff\x00\x01", 3)));
  EXPECT_EQ(line, R"({"topic":"t","partition":0,"offset":17,"timestamp_ms":1700000000000,)"
                  R"("key":"k","value_b64":"/wAB","headers":{}})");
}

TEST(FormatRecordJsonTest, NonUtf8KeyBecomesKeyB64InTheKeysPlace) {
  const std::string line = FormatRecordJson(MakeRecord("\xc3\x28", "v"));
  EXPECT_EQ(line, R"({"topic":"t","partition":0,"offset":17,"timestamp_ms":1700000000000,)"
                  R"("key_b64":"wyg=","value":"v","headers":{}})");
}

TEST(FormatRecordJsonTest, HeadersKeepOrderAndBinaryOnesGoToHeadersB64) {
  ConsumedRecord r = MakeRecord("k", "v");
  r.headers = {{"z", "1"}, {"a", "2"}, {"bin", std::string("\x80", 1)}};
  const std::string line = FormatRecordJson(r);
  EXPECT_NE(line.find(R"("headers":{"z":"1","a":"2"},"headers_b64":{"bin":"gA=="}})"),
            std::string::npos)
      << line;
}

TEST(FormatRecordJsonTest, OutputParsesBackToTheSameValues) {
  ConsumedRecord r = MakeRecord("key \"q\"", "line\r\nwith\x7f controls");
  r.partition = 3;
  r.offset = 123456789012;
  const auto j = nlohmann::json::parse(FormatRecordJson(r));
  EXPECT_EQ(j["partition"], 3);
  EXPECT_EQ(j["offset"], 123456789012);
  EXPECT_EQ(j["key"], r.key);
  EXPECT_EQ(j["value"], r.value);
}

TEST(IsValidUtf8Test, AcceptsWellFormedText) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("plain ascii"));
  EXPECT_TRUE(IsValidUtf8(std::string("nul\0inside", 10)));
  EXPECT_TRUE(IsValidUtf8("\xc3\xa9"));          // é
  EXPECT_TRUE(IsValidUtf8("\xe2\x82\xac"));      // €
  EXPECT_TRUE(IsValidUtf8("\xf0\x9f\x9a\x80"));  // 🚀
  EXPECT_TRUE(IsValidUtf8("\xf4\x8f\xbf\xbf"));  // U+10FFFF
}

TEST(IsValidUtf8Test, RejectsMalformedText) {
  EXPECT_FALSE(IsValidUtf8("\x80"));              // lone continuation byte
  EXPECT_FALSE(IsValidUtf8("\xc3"));              // truncated
  EXPECT_FALSE(IsValidUtf8("\xc0\xaf"));          // overlong '/'
  EXPECT_FALSE(IsValidUtf8("\xe0\x80\xaf"));      // overlong
  EXPECT_FALSE(IsValidUtf8("\xed\xa0\x80"));      // surrogate U+D800
  EXPECT_FALSE(IsValidUtf8("\xf4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(IsValidUtf8("\xff"));
  EXPECT_FALSE(IsValidUtf8("ok\xe2\x82"));  // truncated at the end
}

}  // namespace
}  // namespace evlog::client
