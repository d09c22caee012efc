#pragma once
/// `PgStore`: `SqlStore` on PostgreSQL (libpq), for the distributed shape: several replicas
/// share one database and see each other's committed changes on their next call
/// (`config_version()` reads the row every time). Replicas write concurrently: configuration
/// writes serialise on the config_version row, usage writes add to spend rows atomically, and
/// migrations run under an advisory lock.

#include <cstddef>
#include <string>
#include <string_view>

#include "store/sql/sql_store.hpp"

namespace llmgw::store {

struct PgStoreOptions {
  /// Connections opened at most (lazily, on demand); a call waits for a free one.
  std::size_t pool_size = 4;
};

class PgStore final : public SqlStore {
 public:
  /// Parses `url` (postgres://user:password@host:port/db?params, or any libpq connection
  /// string) without connecting: connections are opened by the first calls. Throws
  /// std::runtime_error if it does not parse (the message never quotes the password).
  explicit PgStore(const std::string& url, PgStoreOptions options = {});

  /// The database as messages name it ("postgresql://db.internal:5432/llmgw"): never the
  /// user, the password or the URL's parameters.
  [[nodiscard]] const std::string& description() const noexcept {
    return database().description();
  }
};

/// Whether `url` selects PostgreSQL: it starts with postgres:// or postgresql://.
bool is_postgres_url(std::string_view url) noexcept;

}  // namespace llmgw::store
