// Known-answer tests from tests/data/crypto and tests/data/wycheproof (sources and licences in
// tests/data/README.md): RFC 7515 A.1 (HS256), RFC 9106 and the PHC reference (Argon2),
// Wycheproof and the GCM specification (AES-256-GCM).
#include "auth/crypto.hpp"

#include "core/ids.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

namespace llmgw::auth {
namespace {

boost::json::value load(const std::string& rel) {
  std::ifstream in(std::string(LLMGW_TEST_DATA_DIR) + "/" + rel);
  EXPECT_TRUE(in) << "missing test vectors " << rel;
  std::stringstream ss;
  ss << in.rdbuf();
  return boost::json::parse(ss.str());
}

Bytes hex(std::string_view h) {
  Bytes out;
  for (std::size_t i = 0; i + 1 < h.size(); i += 2) {
    out.push_back(static_cast<unsigned char>(std::stoi(std::string(h.substr(i, 2)), nullptr, 16)));
  }
  return out;
}

std::string str(const boost::json::value& v, const char* k) {
  return std::string(v.at(k).as_string());
}

TEST(Jwt, MatchesRfc7515AppendixA1) {
  const auto v = load("crypto/jwt_hs256_rfc7515_a1.json");
  const Bytes key = hex(str(v, "key_hex"));
  EXPECT_EQ(hs256_signature(str(v, "signing_input"), key), str(v, "signature_b64url"));
  // The RFC's token verifies (its exp, 2011-03-22, is checked against a time before it).
  JwtError err{};
  const auto payload =
      jwt_verify_hs256(str(v, "compact_serialization"), key, 1'300'000'000, &err);
  ASSERT_TRUE(payload.has_value());
  EXPECT_EQ(*payload, str(v, "payload_utf8"));
  EXPECT_FALSE(jwt_verify_hs256(str(v, "compact_serialization"), key, 1'300'819'380, &err));
  EXPECT_EQ(err, JwtError::Expired);
}

TEST(Jwt, RefusesNoneOtherAlgorithmsTamperingAndTimeWindows) {
  const Bytes key = hex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
  const std::string good = jwt_sign_hs256(R"({"sub":"adm_1","exp":2000,"nbf":1000})", key);
  JwtError err{};
  EXPECT_TRUE(jwt_verify_hs256(good, key, 1500, &err));
  EXPECT_FALSE(jwt_verify_hs256(good, key, 2000, &err));
  EXPECT_EQ(err, JwtError::Expired);
  EXPECT_FALSE(jwt_verify_hs256(good, key, 999, &err));
  EXPECT_EQ(err, JwtError::NotYetValid);
  const auto payload_part = good.substr(good.find('.') + 1, good.rfind('.') - good.find('.') - 1);
  auto b64 = [](std::string_view s) {
    return core::base64url(std::span<const unsigned char>(
        reinterpret_cast<const unsigned char*>(s.data()), s.size()));
  };
  // alg none, with and without a signature.
  const std::string none = b64(R"({"alg":"none","typ":"JWT"})") + "." + payload_part + ".";
  EXPECT_FALSE(jwt_verify_hs256(none, key, 1500, &err));
  EXPECT_EQ(err, JwtError::Algorithm);
  const std::string none_signed = b64(R"({"alg":"none"})") + "." + payload_part + ".AAAA";
  EXPECT_FALSE(jwt_verify_hs256(none_signed, key, 1500, &err));
  EXPECT_EQ(err, JwtError::Algorithm);
  const std::string hs384 = b64(R"({"alg":"HS384"})") + "." + payload_part + ".AAAA";
  EXPECT_FALSE(jwt_verify_hs256(hs384, key, 1500, &err));
  EXPECT_EQ(err, JwtError::Algorithm);
  // A payload changed after signing.
  const std::string forged = good.substr(0, good.find('.') + 1) +
                             b64(R"({"sub":"adm_0","exp":2000,"nbf":1000})") +
                             good.substr(good.rfind('.'));
  EXPECT_FALSE(jwt_verify_hs256(forged, key, 1500, &err));
  EXPECT_EQ(err, JwtError::Signature);
  // Another key.
  EXPECT_FALSE(jwt_verify_hs256(good, hex("00"), 1500, &err));
  EXPECT_EQ(err, JwtError::Signature);
  for (std::string_view bad : {"", "a.b", "a.b.c.d", "!!.??.**"}) {
    EXPECT_FALSE(jwt_verify_hs256(bad, key, 1500, &err)) << bad;
  }
}

TEST(Argon2, MatchesRfc9106Vectors) {
  const auto v = load("crypto/argon2_test_vectors.json");
  ASSERT_EQ(v.at("rfc9106").as_array().size(), 3u);  // Argon2d, Argon2i, Argon2id
  for (const auto& c : v.at("rfc9106").as_array()) {
    const std::string type = str(c, "type");
    const Argon2Type t = type == "argon2d" ? Argon2Type::D
                         : type == "argon2i" ? Argon2Type::I
                                             : Argon2Type::ID;
    Argon2Params p;
    p.iterations = static_cast<std::uint32_t>(c.at("iterations").as_int64());
    p.memory_kib = static_cast<std::uint32_t>(c.at("memory_kib").as_int64());
    p.parallelism = static_cast<std::uint32_t>(c.at("parallelism").as_int64());
    p.tag_length = static_cast<std::uint32_t>(c.at("tag_length").as_int64());
    const Bytes tag = argon2_raw(t, hex(str(c, "password_hex")), hex(str(c, "salt_hex")),
                                 hex(str(c, "secret_hex")), hex(str(c, "associated_data_hex")), p);
    EXPECT_EQ(tag, hex(str(c, "tag_hex"))) << type;
  }
}

TEST(Argon2, VerifiesThePhcReferenceEncodingsAndOurOwnHashes) {
  const auto v = load("crypto/argon2_test_vectors.json");
  ASSERT_EQ(v.at("phc_reference_argon2id").as_array().size(), 8u);
  for (const auto& c : v.at("phc_reference_argon2id").as_array()) {
    EXPECT_TRUE(argon2id_verify(str(c, "password"), str(c, "encoded"))) << str(c, "encoded");
    EXPECT_FALSE(argon2id_verify(str(c, "password") + "x", str(c, "encoded")));
  }
  const Argon2Params fast{.iterations = 1, .memory_kib = 1024, .parallelism = 1};
  const std::string h = argon2id_hash("correct horse", fast);
  EXPECT_EQ(h.rfind("$argon2id$v=19$m=1024,t=1,p=1$", 0), 0u) << h;
  EXPECT_TRUE(argon2id_verify("correct horse", h));
  EXPECT_FALSE(argon2id_verify("correct horsE", h));
  EXPECT_NE(h, argon2id_hash("correct horse", fast));  // random salt
  EXPECT_FALSE(argon2id_verify("x", "not a phc string"));
}

TEST(Aes256Gcm, MatchesWycheproofAndTheGcmSpecification) {
  const auto v = load("wycheproof/aes256_gcm_selected.json");
  int checked = 0;
  for (const char* set : {"wycheproof", "gcm_spec"}) {
    for (const auto& c : v.at(set).as_array()) {
      const Bytes key = hex(str(c, "key")), iv = hex(str(c, "iv")), aad = hex(str(c, "aad")),
                  msg = hex(str(c, "msg")), ct = hex(str(c, "ct")), tag = hex(str(c, "tag"));
      const bool valid = str(c, "result") == "valid";
      const auto opened = aes256gcm_decrypt(key, iv, aad, ct, tag);
      EXPECT_EQ(opened.has_value(), valid) << set << " " << (c.as_object().contains("tcId") ? c.at("tcId").as_int64() : 0);
      if (valid) {
        EXPECT_EQ(*opened, msg);
        const auto sealed = aes256gcm_encrypt(key, iv, aad, msg);
        ASSERT_TRUE(sealed.has_value());
        EXPECT_EQ(sealed->first, ct);
        EXPECT_EQ(sealed->second, tag);
      }
      ++checked;
    }
  }
  EXPECT_EQ(checked, 22);
}

TEST(SealedSecrets, RoundTripAndRefuseAnotherPlaceOrKey) {
  const Bytes key = hex("92ace3e348cd821092cd921aa3546374299ab46209691bc28b8752d17f123c20");
  const std::string sealed = seal_secret(key, "sk-upstream-secret", "provider:prov_1");
  EXPECT_EQ(sealed.find("sk-upstream"), std::string::npos);
  EXPECT_EQ(open_secret(key, sealed, "provider:prov_1"), "sk-upstream-secret");
  EXPECT_FALSE(open_secret(key, sealed, "provider:prov_2"));
  Bytes other = key;
  other[0] ^= 1;
  EXPECT_FALSE(open_secret(other, sealed, "provider:prov_1"));
  EXPECT_FALSE(open_secret(key, sealed.substr(1), "provider:prov_1"));
  EXPECT_NE(sealed, seal_secret(key, "sk-upstream-secret", "provider:prov_1"));  // fresh nonce
}

}  // namespace
}  // namespace llmgw::auth
