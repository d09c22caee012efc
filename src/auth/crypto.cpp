#include "auth/crypto.hpp"

#include "core/ids.hpp"

#include <argon2.h>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <stdexcept>

namespace llmgw::auth {

namespace {
std::span<const unsigned char> bytes_of(std::string_view s) {
  return {reinterpret_cast<const unsigned char*>(s.data()), s.size()};
}
}  // namespace

std::string hs256_signature(std::string_view signing_input, std::span<const unsigned char> key) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(signing_input.data()), signing_input.size(), mac,
       &len);
  return core::base64url(std::span<const unsigned char>(mac, len));
}

std::string jwt_sign_hs256(std::string_view payload_json, std::span<const unsigned char> key) {
  static const std::string kHeader = core::base64url(bytes_of(R"({"alg":"HS256","typ":"JWT"})"));
  std::string token = kHeader + "." + core::base64url(bytes_of(payload_json));
  const std::string sig = hs256_signature(token, key);
  token += ".";
  token += sig;
  return token;
}

std::optional<std::string> jwt_verify_hs256(std::string_view token,
                                            std::span<const unsigned char> key,
                                            std::int64_t now_unix, JwtError* error) {
  auto fail = [&](JwtError e) -> std::optional<std::string> {
    if (error != nullptr) {
      *error = e;
    }
    return std::nullopt;
  };
  const auto d1 = token.find('.');
  const auto d2 = d1 == std::string_view::npos ? d1 : token.find('.', d1 + 1);
  if (d2 == std::string_view::npos || token.find('.', d2 + 1) != std::string_view::npos) {
    return fail(JwtError::Malformed);
  }
  const auto header = base64url_decode(token.substr(0, d1));
  const auto payload = base64url_decode(token.substr(d1 + 1, d2 - d1 - 1));
  const auto sig = base64url_decode(token.substr(d2 + 1));
  if (!header || !payload || !sig) {
    return fail(JwtError::Malformed);
  }
  boost::system::error_code ec;
  const auto h = boost::json::parse(
      std::string_view(reinterpret_cast<const char*>(header->data()), header->size()), ec);
  if (ec || !h.is_object()) {
    return fail(JwtError::Malformed);
  }
  const auto* alg = h.get_object().if_contains("alg");
  if (alg == nullptr || !alg->is_string() || alg->get_string() != "HS256") {
    return fail(JwtError::Algorithm);  // "none", HS384, RS256, … are all refused
  }
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  const std::string_view input = token.substr(0, d2);
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &len);
  if (sig->size() != len || CRYPTO_memcmp(sig->data(), mac, len) != 0) {
    return fail(JwtError::Signature);
  }
  std::string body(reinterpret_cast<const char*>(payload->data()), payload->size());
  const auto p = boost::json::parse(body, ec);
  if (ec || !p.is_object()) {
    return fail(JwtError::Malformed);
  }
  const auto& o = p.get_object();
  auto number = [](const boost::json::value* v) -> std::optional<std::int64_t> {
    if (v->is_int64()) return v->get_int64();
    if (v->is_uint64()) return static_cast<std::int64_t>(v->get_uint64());
    if (v->is_double()) return static_cast<std::int64_t>(v->get_double());
    return std::nullopt;
  };
  if (const auto* exp = o.if_contains("exp")) {
    const auto t = number(exp);
    if (!t) {
      return fail(JwtError::Malformed);
    }
    if (*t <= now_unix) {
      return fail(JwtError::Expired);
    }
  }
  if (const auto* nbf = o.if_contains("nbf")) {
    const auto t = number(nbf);
    if (!t) {
      return fail(JwtError::Malformed);
    }
    if (*t > now_unix) {
      return fail(JwtError::NotYetValid);
    }
  }
  return body;
}

std::string argon2id_hash(std::string_view password, const Argon2Params& params) {
  unsigned char salt[16];
  core::secure_random(salt);
  const std::size_t len = argon2_encodedlen(params.iterations, params.memory_kib,
                                            params.parallelism, sizeof salt, params.tag_length,
                                            Argon2_id);
  std::string encoded(len, '\0');
  const int rc = ::argon2id_hash_encoded(params.iterations, params.memory_kib, params.parallelism,
                                         password.data(), password.size(), salt, sizeof salt,
                                         params.tag_length, encoded.data(), encoded.size());
  if (rc != ARGON2_OK) {
    throw std::runtime_error(std::string("argon2id: ") + argon2_error_message(rc));
  }
  encoded.resize(std::char_traits<char>::length(encoded.c_str()));
  return encoded;
}

bool argon2id_verify(std::string_view password, const std::string& encoded) {
  return ::argon2id_verify(encoded.c_str(), password.data(), password.size()) == ARGON2_OK;
}

Bytes argon2_raw(Argon2Type type, std::span<const unsigned char> password,
                 std::span<const unsigned char> salt, std::span<const unsigned char> secret,
                 std::span<const unsigned char> associated_data, const Argon2Params& params) {
  Bytes out(params.tag_length);
  Bytes pwd(password.begin(), password.end());  // argon2_ctx may wipe its inputs
  Bytes sec(secret.begin(), secret.end());
  argon2_context ctx{};
  ctx.out = out.data();
  ctx.outlen = static_cast<std::uint32_t>(out.size());
  ctx.pwd = pwd.data();
  ctx.pwdlen = static_cast<std::uint32_t>(pwd.size());
  ctx.salt = const_cast<unsigned char*>(salt.data());
  ctx.saltlen = static_cast<std::uint32_t>(salt.size());
  ctx.secret = sec.empty() ? nullptr : sec.data();
  ctx.secretlen = static_cast<std::uint32_t>(sec.size());
  ctx.ad = const_cast<unsigned char*>(associated_data.data());
  ctx.adlen = static_cast<std::uint32_t>(associated_data.size());
  ctx.t_cost = params.iterations;
  ctx.m_cost = params.memory_kib;
  ctx.lanes = params.parallelism;
  ctx.threads = params.parallelism;
  ctx.version = ARGON2_VERSION_13;
  ctx.flags = ARGON2_DEFAULT_FLAGS;
  const argon2_type t = type == Argon2Type::D ? Argon2_d : type == Argon2Type::I ? Argon2_i
                                                                                 : Argon2_id;
  const int rc = argon2_ctx(&ctx, t);
  if (rc != ARGON2_OK) {
    throw std::runtime_error(std::string("argon2: ") + argon2_error_message(rc));
  }
  return out;
}

namespace {

struct CipherCtx {
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  ~CipherCtx() { EVP_CIPHER_CTX_free(ctx); }
};

}  // namespace

std::optional<std::pair<Bytes, Bytes>> aes256gcm_encrypt(std::span<const unsigned char> key,
                                                          std::span<const unsigned char> iv,
                                                          std::span<const unsigned char> aad,
                                                          std::span<const unsigned char> msg) {
  if (key.size() != 32 || iv.empty()) {
    return std::nullopt;
  }
  CipherCtx c;
  int len = 0;
  Bytes ct(msg.size());
  Bytes tag(16);
  if (EVP_EncryptInit_ex(c.ctx, EVP_aes_256_gcm(), nullptr, nullptr, nullptr) != 1 ||
      EVP_CIPHER_CTX_ctrl(c.ctx, EVP_CTRL_GCM_SET_IVLEN, static_cast<int>(iv.size()), nullptr) != 1 ||
      EVP_EncryptInit_ex(c.ctx, nullptr, nullptr, key.data(), iv.data()) != 1 ||
      (!aad.empty() &&
       EVP_EncryptUpdate(c.ctx, nullptr, &len, aad.data(), static_cast<int>(aad.size())) != 1) ||
      (!msg.empty() &&
       EVP_EncryptUpdate(c.ctx, ct.data(), &len, msg.data(), static_cast<int>(msg.size())) != 1) ||
      EVP_EncryptFinal_ex(c.ctx, ct.data() + (msg.empty() ? 0 : len), &len) != 1 ||
      EVP_CIPHER_CTX_ctrl(c.ctx, EVP_CTRL_GCM_GET_TAG, 16, tag.data()) != 1) {
    return std::nullopt;
  }
  return std::pair{std::move(ct), std::move(tag)};
}

std::optional<Bytes> aes256gcm_decrypt(std::span<const unsigned char> key,
                                       std::span<const unsigned char> iv,
                                       std::span<const unsigned char> aad,
                                       std::span<const unsigned char> ct,
                                       std::span<const unsigned char> tag) {
  if (key.size() != 32 || iv.empty() || tag.size() != 16) {
    return std::nullopt;
  }
  CipherCtx c;
  int len = 0;
  Bytes msg(ct.size());
  Bytes t(tag.begin(), tag.end());
  if (EVP_DecryptInit_ex(c.ctx, EVP_aes_256_gcm(), nullptr, nullptr, nullptr) != 1 ||
      EVP_CIPHER_CTX_ctrl(c.ctx, EVP_CTRL_GCM_SET_IVLEN, static_cast<int>(iv.size()), nullptr) != 1 ||
      EVP_DecryptInit_ex(c.ctx, nullptr, nullptr, key.data(), iv.data()) != 1 ||
      (!aad.empty() &&
       EVP_DecryptUpdate(c.ctx, nullptr, &len, aad.data(), static_cast<int>(aad.size())) != 1) ||
      (!ct.empty() &&
       EVP_DecryptUpdate(c.ctx, msg.data(), &len, ct.data(), static_cast<int>(ct.size())) != 1) ||
      EVP_CIPHER_CTX_ctrl(c.ctx, EVP_CTRL_GCM_SET_TAG, 16, t.data()) != 1 ||
      EVP_DecryptFinal_ex(c.ctx, msg.data() + (ct.empty() ? 0 : len), &len) != 1) {
    return std::nullopt;
  }
  return msg;
}

std::string seal_secret(std::span<const unsigned char> key, std::string_view plaintext,
                        std::string_view aad) {
  unsigned char nonce[12];
  core::secure_random(nonce);
  auto r = aes256gcm_encrypt(key, nonce, bytes_of(aad), bytes_of(plaintext));
  if (!r) {
    throw std::runtime_error("seal_secret: the key must be 32 bytes");
  }
  Bytes all(nonce, nonce + sizeof nonce);
  all.insert(all.end(), r->first.begin(), r->first.end());
  all.insert(all.end(), r->second.begin(), r->second.end());
  return core::base64url(all);
}

std::optional<std::string> open_secret(std::span<const unsigned char> key, std::string_view sealed,
                                       std::string_view aad) {
  const auto all = base64url_decode(sealed);
  if (!all || all->size() < 12 + 16) {
    return std::nullopt;
  }
  const std::span<const unsigned char> b(*all);
  auto msg = aes256gcm_decrypt(key, b.subspan(0, 12), bytes_of(aad),
                               b.subspan(12, b.size() - 28), b.subspan(b.size() - 16));
  if (!msg) {
    return std::nullopt;
  }
  return std::string(msg->begin(), msg->end());
}

bool constant_time_equal(std::string_view a, std::string_view b) noexcept {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace llmgw::auth
