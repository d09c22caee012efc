#pragma once
/// Which `Store` a process uses: PostgreSQL when DATABASE_URL names one (the distributed
/// shape: replicas share it), else the SQLite file in the data directory (the embedded
/// default). Every command opens its store here.

#include <memory>
#include <string>

#include "core/config.hpp"
#include "store/store.hpp"

namespace llmgw::app {

/// A store for `settings`, not migrated: a PgStore on settings.database_url when it is set,
/// else a SqliteStore on settings.database_path() (creating the data directory). Throws
/// std::runtime_error when it cannot be opened (PostgreSQL connects lazily: an unreachable
/// server shows at the first call).
std::unique_ptr<store::Store> open_store(const core::Settings& settings);

/// The database as messages name it: the SQLite file's path, or "postgresql://HOST:PORT/NAME"
/// (never the URL itself, which may hold a password).
std::string describe_store(const core::Settings& settings);

}  // namespace llmgw::app
