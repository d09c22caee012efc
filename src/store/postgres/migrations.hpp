#pragma once
/// The PostgreSQL schema as an ordered list of versioned migrations, with the same versions
/// and names as SQLite's (store/sqlite/migrations.hpp): version N means the same data model
/// on both. Each one is applied in its own transaction, under an advisory lock, and recorded
/// in `schema_migrations`; a released migration is never edited.

#include <span>
#include <string_view>

#include "store/sql/sql.hpp"

namespace llmgw::store::postgres {

using Migration = sql::Migration;

/// All migrations, by strictly increasing version starting at 1.
std::span<const Migration> migrations() noexcept;

/// The highest version this build knows (the last entry of `migrations()`).
int latest_migration_version() noexcept;

}  // namespace llmgw::store::postgres
