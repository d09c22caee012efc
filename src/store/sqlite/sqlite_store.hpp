#pragma once
/// The embedded store: `SqlStore` on an SQLite file (WAL mode), the gateway's default.

#include <string>

#include "store/sql/sql_store.hpp"

namespace llmgw::store {

/// Creates the file's directory when missing. Every write throws std::runtime_error,
/// changing nothing (its audit record included), for a value the schema rejects.
class SqliteStore final : public SqlStore {
 public:
  explicit SqliteStore(std::string path);

  [[nodiscard]] const std::string& path() const noexcept { return database().description(); }
};

}  // namespace llmgw::store
