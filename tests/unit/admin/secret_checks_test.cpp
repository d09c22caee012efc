// The secret checks: a process whose master key or JWT secret is not the database's refuses
// to start (SecretMismatch naming the variable); a rotation's previous key still passes.

#include "admin/secrets.hpp"
#include "store/sqlite/sqlite_store.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <memory>

namespace llmgw::admin {
namespace {

class SecretChecks : public ::testing::Test {
 protected:
  SecretChecks()
      : dir_(std::filesystem::temp_directory_path() /
             ("llmgw-secret-checks-" + std::to_string(::getpid()) + "-" +
              ::testing::UnitTest::GetInstance()->current_test_info()->name())) {
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    store_ = std::make_unique<store::SqliteStore>((dir_ / "llmgw.db").string());
    store_->migrate();
  }
  ~SecretChecks() override { std::filesystem::remove_all(dir_); }

  static MasterKeys env_keys(std::vector<auth::Bytes> keys) {
    return MasterKeys{std::move(keys), "LLMGW_MASTER_KEY"};
  }
  /// Seals one provider credential under `key`.
  void seal_provider(const auth::Bytes& key) {
    store_->set_secret_codec(std::make_shared<MasterKeyCodec>(std::vector<auth::Bytes>{key}));
    core::GatewayConfig cfg;
    cfg.providers.push_back({.name = "p", .base_url = "https://x.test/v1", .api_key = "sk-up"});
    store_->apply_config(cfg);
  }
  /// What a process holding `keys` sees at start.
  void start_with(const std::vector<auth::Bytes>& keys) {
    store_->set_secret_codec(std::make_shared<MasterKeyCodec>(keys));
    verify_master_key(*store_, env_keys(keys));
  }

  std::filesystem::path dir_;
  std::unique_ptr<store::SqliteStore> store_;
  const auth::Bytes k1_ = auth::Bytes(32, 1);
  const auth::Bytes k2_ = auth::Bytes(32, 2);
};

TEST_F(SecretChecks, CheckValuesDependOnTheSecretAndRevealNothing) {
  const std::string a = secret_check_value(kMasterKeyCheck, k1_);
  EXPECT_EQ(a, secret_check_value(kMasterKeyCheck, k1_));
  EXPECT_NE(a, secret_check_value(kMasterKeyCheck, k2_));
  EXPECT_NE(a, secret_check_value(kJwtSecretCheck, k1_)) << "one value per purpose";
  EXPECT_TRUE(a.starts_with("v1:"));
}

TEST_F(SecretChecks, TheFirstKeyIsRecordedAndAnotherRefused) {
  EXPECT_NO_THROW(start_with({k1_}));
  EXPECT_EQ(store_->secret_check(std::string(kMasterKeyCheck)),
            secret_check_value(kMasterKeyCheck, k1_));
  EXPECT_NO_THROW(start_with({k1_}));
  try {
    start_with({k2_});
    FAIL() << "a second master key was accepted";
  } catch (const SecretMismatch& e) {
    EXPECT_NE(std::string(e.what()).find("set LLMGW_MASTER_KEY"), std::string::npos) << e.what();
  }
}

TEST_F(SecretChecks, ARotationPassesWithEitherKeyFirst) {
  start_with({k1_});
  EXPECT_NO_THROW(start_with({k1_, k2_})) << "new key only in LLMGW_MASTER_KEY_PREVIOUS";
  store_->set_secret_check(std::string(kMasterKeyCheck), secret_check_value(kMasterKeyCheck, k2_));
  EXPECT_NO_THROW(start_with({k1_, k2_})) << "rotated, variables not yet swapped";
  EXPECT_NO_THROW(start_with({k2_, k1_})) << "swapped";
  EXPECT_NO_THROW(start_with({k2_}));
  EXPECT_THROW(start_with({k1_}), SecretMismatch) << "the old key alone after the rotation";
}

TEST_F(SecretChecks, ADatabaseWithoutACheckIsJudgedByItsCredentials) {
  seal_provider(k1_);  // sealed by a build from before the checks
  EXPECT_THROW(start_with({k2_}), SecretMismatch);
  EXPECT_EQ(store_->secret_check(std::string(kMasterKeyCheck)), std::nullopt)
      << "a refused key records nothing";
  EXPECT_NO_THROW(start_with({k1_}));
  EXPECT_THROW(start_with({k2_}), SecretMismatch);
}

TEST_F(SecretChecks, TheJwtSecretMustMatchTooAndCanBeAdoptedOnPurpose) {
  const auth::Bytes a(40, 'a');
  const auth::Bytes b(40, 'b');
  EXPECT_NO_THROW(verify_jwt_secret(*store_, a, true));
  EXPECT_NO_THROW(verify_jwt_secret(*store_, a, false));
  try {
    verify_jwt_secret(*store_, b, true);
    FAIL() << "a second JWT secret was accepted";
  } catch (const SecretMismatch& e) {
    EXPECT_NE(std::string(e.what()).find("set ADMIN_JWT_SECRET"), std::string::npos) << e.what();
  }
  store_->set_secret_check(std::string(kJwtSecretCheck), secret_check_value(kJwtSecretCheck, b));
  EXPECT_NO_THROW(verify_jwt_secret(*store_, b, true));
  EXPECT_THROW(verify_jwt_secret(*store_, a, true), SecretMismatch);
}

}  // namespace
}  // namespace llmgw::admin
