#pragma once
/// The admin plane's long-lived secrets: the master key that seals provider credentials at
/// rest and the JWT signing secret. Each comes from the environment or, on the embedded
/// default, from a file generated once into the data directory (mode 0600).

#include "auth/crypto.hpp"
#include "store/store.hpp"

#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace llmgw::admin {

/// AES-256-GCM codec over one or more 32-byte keys: seals with the first, opens with any
/// (the previous key stays usable while replicas move to a new one).
class MasterKeyCodec final : public store::SecretCodec {
 public:
  /// Throws std::invalid_argument unless every key is 32 bytes and there is at least one.
  explicit MasterKeyCodec(std::vector<auth::Bytes> keys);
  [[nodiscard]] std::string seal(std::string_view plaintext, std::string_view aad) const override;
  [[nodiscard]] std::optional<std::string> open(std::string_view sealed,
                                                std::string_view aad) const override;

 private:
  std::vector<auth::Bytes> keys_;
};

/// A 32-byte key written as base64 (standard or url-safe, padding optional) or 64 hex
/// digits. nullopt if it is neither or not 32 bytes.
std::optional<auth::Bytes> parse_key_text(std::string_view text);

/// Reads a key file written by `write_key_file`; nullopt if it does not exist. Throws
/// std::runtime_error if it exists but is unreadable or malformed.
std::optional<auth::Bytes> read_key_file(const std::string& path);
/// Writes 32 fresh random bytes (hex) to `path` with mode 0600, durably (fsync of the file
/// and its directory); fails if the file exists. Returns the key.
auth::Bytes create_key_file(const std::string& path);
/// Writes `key` to `path` (mode 0600, fsync'ed), replacing nothing: fails if it exists.
void write_key_file(const std::string& path, std::span<const unsigned char> key);

struct MasterKeys {
  std::vector<auth::Bytes> keys;  ///< sealing key first
  std::string source;            ///< "LLMGW_MASTER_KEY" or the file path
};

/// LLMGW_MASTER_KEY (+ LLMGW_MASTER_KEY_PREVIOUS), else DATA_DIR/master.key, created when
/// `create` and missing (else throws). A DATA_DIR/master.key.new left by an interrupted
/// rotation is returned first (see `finish_rotation`). Throws std::runtime_error on a
/// malformed key.
MasterKeys load_master_keys(const std::string& data_dir, bool create);

/// Locks DATA_DIR/master.key.lock without waiting: shared by every gateway serving on the
/// directory for its whole life, exclusive for a rotation. Returns the descriptor to keep
/// open, or -1 when the other kind is held.
int lock_master_key(const std::string& data_dir, bool exclusive);

/// Completes a rotation that stopped between writing master.key.new and renaming it: reseals
/// every credential with the new key (opening with either) and renames the file. Returns
/// true if there was one to finish.
bool finish_rotation(const std::string& data_dir, store::Store& store);

/// ADMIN_JWT_SECRET (at least 32 bytes of text), else DATA_DIR/admin-jwt.secret, created
/// when missing.
auth::Bytes load_jwt_secret(const std::string& data_dir);

// --- Secret checks: every process on one database must hold the same secrets.
//
// The store keeps a check value of the master key and of the JWT secret (HMAC-SHA256 of a
// fixed text under the secret: it proves which secret without revealing it), written by the
// first process that uses each. A process holding another secret refuses to start — else it
// would seal credentials the others cannot open, or sign sessions they refuse.

/// Thrown by the checks below; what() names the variable to set.
class SecretMismatch : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// The store's name of the master key's check value.
inline constexpr std::string_view kMasterKeyCheck = "master_key";
/// The store's name of the admin JWT secret's check value.
inline constexpr std::string_view kJwtSecretCheck = "admin_jwt_secret";

/// The check value of `secret` for `name` (one of the two above).
std::string secret_check_value(std::string_view name, std::span<const unsigned char> secret);

/// At start, once `store` has the codec of `keys`: passes when the stored check is that of
/// one of `keys` (the sealing key, or the previous key during a rotation). With no check
/// stored yet, records the sealing key's, unless the store holds credentials none of `keys`
/// opens. Throws SecretMismatch otherwise.
void verify_master_key(store::Store& store, const MasterKeys& keys);

/// The same for the admin JWT secret (`from_environment`: ADMIN_JWT_SECRET, else the file
/// DATA_DIR/admin-jwt.secret).
void verify_jwt_secret(store::Store& store, std::span<const unsigned char> secret,
                       bool from_environment);

/// Whether ADMIN_JWT_SECRET is set (else load_jwt_secret used the data directory's file).
bool jwt_secret_from_environment();

}  // namespace llmgw::admin
