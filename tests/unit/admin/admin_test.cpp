// The admin API's pieces that need no server: the route table against the OpenAPI document
// it serves, body and query reading, and the master-key codec and key files.

#include "admin/admin_api.hpp"
#include "admin/input.hpp"
#include "admin/secrets.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sys/stat.h>

namespace llmgw::admin {
namespace {

namespace json = boost::json;

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), ::tolower);
  return out;
}

TEST(OpenApi, DocumentListsExactlyTheRoutesTheServerHas) {
  const json::value doc = json::parse(openapi_document());
  EXPECT_EQ(doc.at("openapi").as_string().subview().substr(0, 3), "3.1");
  std::set<std::pair<std::string, std::string>> documented;
  static const std::set<std::string> kMethods{"get", "post", "put", "patch", "delete"};
  for (const auto& [path, item] : doc.at("paths").as_object()) {
    for (const auto& [method, op] : item.as_object()) {
      if (kMethods.contains(std::string(method))) {
        documented.emplace(std::string(method), std::string(path));
      }
    }
  }
  std::set<std::pair<std::string, std::string>> served;
  for (const auto& r : AdminApi::routes()) {
    served.emplace(lower(r.method), std::string(r.pattern));
  }
  EXPECT_EQ(documented, served);
}

TEST(OpenApi, MinimumRolesMatchTheRouter) {
  const json::value doc = json::parse(openapi_document());
  for (const auto& r : AdminApi::routes()) {
    const auto& op = doc.at("paths").at(r.pattern).at(lower(r.method));
    ASSERT_TRUE(op.as_object().contains("x-llmgw-min-role")) << r.method << " " << r.pattern;
    EXPECT_EQ(op.at("x-llmgw-min-role").as_string(), to_string(r.min_role))
        << r.method << " " << r.pattern;
  }
}

ApiError error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const ApiError& e) {
    return e;
  }
  ADD_FAILURE() << "no ApiError thrown";
  return {};
}

TEST(Body, RefusesWhatIsNotAJsonObject) {
  for (std::string_view text : {"", "[]", "1", "\"x\"", "{", "{\"a\":}", "null"}) {
    EXPECT_EQ(error_of([&] { Body b(text); }).errc, core::Errc::BadRequest) << text;
  }
  // Deeper than 32 levels.
  std::string deep(40, '[');
  deep = "{\"a\":" + deep + std::string(40, ']') + "}";
  EXPECT_EQ(error_of([&] { Body b(deep); }).errc, core::Errc::BadRequest);
  // Invalid UTF-8 inside a string.
  EXPECT_EQ(error_of([&] { Body b("{\"a\":\"\xff\"}"); }).errc, core::Errc::BadRequest);
}

TEST(Body, TypesAreCheckedAndUnknownFieldsNamed) {
  Body b(R"({"name":"x","n":3,"flag":true,"list":["a"],"map":{"k":"v"},"extra":1})");
  EXPECT_EQ(b.string("name"), "x");
  EXPECT_EQ(b.integer("n"), 3);
  EXPECT_EQ(b.boolean("flag"), true);
  EXPECT_EQ(b.string_array("list")->at(0), "a");
  EXPECT_EQ(b.string_map("map")->at("k"), "v");
  EXPECT_FALSE(b.string("absent"));
  const auto e = error_of([&] { b.finish(); });
  EXPECT_EQ(e.errc, core::Errc::BadRequest);
  EXPECT_EQ(e.param, "extra");

  Body wrong(R"({"n":"3","f":1.5,"big":18446744073709551615,"list":[1],"map":{"k":1}})");
  EXPECT_EQ(error_of([&] { (void)wrong.integer("n"); }).param, "n");
  EXPECT_EQ(error_of([&] { (void)wrong.integer("f"); }).errc, core::Errc::BadRequest);
  EXPECT_EQ(error_of([&] { (void)wrong.integer("big"); }).errc, core::Errc::InvalidValue);
  EXPECT_EQ(error_of([&] { (void)wrong.string_array("list"); }).errc, core::Errc::BadRequest);
  EXPECT_EQ(error_of([&] { (void)wrong.string_map("map"); }).errc, core::Errc::BadRequest);
}

TEST(Query, DecodesEscapesAndRefusesBrokenOnes) {
  const auto q = parse_query("a=1&name=x%20y+z&empty=&flag&a=2");
  EXPECT_EQ(q.at("a"), "2");
  EXPECT_EQ(q.at("name"), "x y z");
  EXPECT_EQ(q.at("empty"), "");
  EXPECT_EQ(q.at("flag"), "");
  EXPECT_EQ(error_of([] { parse_query("a=%zz"); }).errc, core::Errc::BadRequest);
  EXPECT_EQ(error_of([] { parse_query("a=%4"); }).errc, core::Errc::BadRequest);
  EXPECT_EQ(error_of([] { parse_query("tag=a%00b"); }).errc, core::Errc::BadRequest);
  EXPECT_EQ(error_of([] { parse_query("a%00=1"); }).errc, core::Errc::BadRequest);
  EXPECT_EQ(percent_decode("a%2Fb", false), "a/b");
  EXPECT_EQ(percent_decode("a+b", false), "a+b");
}

TEST(Text, NamesAndEmails) {
  EXPECT_TRUE(identifier("openai-prod_1.x", 64));
  EXPECT_FALSE(identifier("-x", 64));
  EXPECT_FALSE(identifier("a b", 64));
  EXPECT_FALSE(identifier(std::string(65, 'a'), 64));
  EXPECT_TRUE(model_name("openai/gpt-4o:2024"));
  EXPECT_FALSE(model_name("gpt 4"));
  EXPECT_FALSE(model_name(std::string("a\0b", 3)));
  EXPECT_TRUE(printable_text("Team A — prod", 1, 200));
  EXPECT_FALSE(printable_text("a\nb", 1, 200));
  EXPECT_TRUE(check_email("ops@example.com").empty());
  for (auto bad : {"ops", "ops@", "@example.com", "a b@example.com", "ops@example", "a@@b.c"}) {
    EXPECT_FALSE(check_email(bad).empty()) << bad;
  }
  EXPECT_FALSE(check_password("short").empty());
  EXPECT_TRUE(check_password("twelve chars").empty());
}

TEST(Roles, ParseAndOrder) {
  EXPECT_EQ(parse_role("viewer"), Role::Viewer);
  EXPECT_EQ(parse_role("editor"), Role::Editor);
  EXPECT_EQ(parse_role("admin"), Role::Admin);
  EXPECT_FALSE(parse_role("root"));
  EXPECT_LT(static_cast<int>(Role::Viewer), static_cast<int>(Role::Editor));
  EXPECT_LT(static_cast<int>(Role::Editor), static_cast<int>(Role::Admin));
}

TEST(MasterKey, KeyTextInHexOrBase64) {
  const std::string hex(64, 'a');
  ASSERT_TRUE(parse_key_text(hex));
  EXPECT_EQ(parse_key_text(hex)->at(0), 0xaa);
  // 32 bytes of 0xff in standard base64 with padding, and url-safe without.
  EXPECT_TRUE(parse_key_text("//////////////////////////////////////////8=\n"));
  EXPECT_TRUE(parse_key_text("__________________________________________8"));
  EXPECT_FALSE(parse_key_text("too short"));
  EXPECT_FALSE(parse_key_text(std::string(62, 'a')));
}

TEST(MasterKey, SealsWithTheFirstKeyAndOpensWithAny) {
  auth::Bytes k1(32, 1), k2(32, 2);
  const MasterKeyCodec old_only({k1});
  const MasterKeyCodec both({k2, k1});
  const MasterKeyCodec new_only({k2});
  const std::string sealed_old = old_only.seal("sk-secret", "prov_1");
  EXPECT_EQ(sealed_old.find("sk-secret"), std::string::npos);
  EXPECT_EQ(both.open(sealed_old, "prov_1"), "sk-secret");
  EXPECT_FALSE(new_only.open(sealed_old, "prov_1"));
  EXPECT_FALSE(both.open(sealed_old, "prov_2")) << "bound to its row";
  EXPECT_EQ(new_only.open(both.seal("x", "p"), "p"), "x");
  EXPECT_THROW(MasterKeyCodec({}), std::invalid_argument);
  EXPECT_THROW(MasterKeyCodec({auth::Bytes(16)}), std::invalid_argument);
}

TEST(MasterKey, KeyFilesAreCreatedOncePrivateAndReread) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("llmgw-admin-test-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "master.key").string();
  EXPECT_FALSE(read_key_file(path));
  const auto key = create_key_file(path);
  struct stat sb {};
  ASSERT_EQ(::stat(path.c_str(), &sb), 0);
  EXPECT_EQ(sb.st_mode & 0777, 0600u);
  EXPECT_EQ(read_key_file(path), key);
  EXPECT_THROW(create_key_file(path), std::runtime_error) << "never overwrites a key";
  const auto keys = load_master_keys(dir.string(), false);
  ASSERT_EQ(keys.keys.size(), 1u);
  EXPECT_EQ(keys.keys[0], key);
  std::ofstream(dir / "bad.key") << "not a key\n";
  EXPECT_THROW(read_key_file((dir / "bad.key").string()), std::runtime_error);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace llmgw::admin

namespace llmgw::admin {
namespace {

TEST(Utf8, AcceptsWellFormedAndRefusesTheRest) {
  EXPECT_TRUE(valid_utf8("plain"));
  EXPECT_TRUE(valid_utf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));
  EXPECT_FALSE(valid_utf8("\xff"));
  EXPECT_FALSE(valid_utf8("\xc3"));                  // cut short
  EXPECT_FALSE(valid_utf8("\xc0\xaf"));              // overlong '/'
  EXPECT_FALSE(valid_utf8("\xed\xa0\x80"));          // a surrogate
  EXPECT_FALSE(valid_utf8("\xf4\x90\x80\x80"));      // above U+10FFFF
  EXPECT_FALSE(valid_utf8("\xe2\x82"));
}

TEST(MasterKey, GatewaysShareTheLockARotationTakesItAlone) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("llmgw-admin-lock-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const int a = lock_master_key(dir.string(), false);
  const int b = lock_master_key(dir.string(), false);
  EXPECT_GE(a, 0);
  EXPECT_GE(b, 0) << "two gateways on one directory";
  EXPECT_EQ(lock_master_key(dir.string(), true), -1) << "no rotation under a gateway";
  ::close(a);
  ::close(b);
  const int r = lock_master_key(dir.string(), true);
  EXPECT_GE(r, 0);
  EXPECT_EQ(lock_master_key(dir.string(), false), -1) << "no gateway starts during a rotation";
  ::close(r);
  // A key file is never left half-written or beside a temporary.
  write_key_file((dir / "k").string(), auth::Bytes(32, 7));
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir), {}), 2);  // k + the lock
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace llmgw::admin
