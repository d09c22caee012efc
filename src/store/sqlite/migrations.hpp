#pragma once
/// The SQLite schema as an ordered list of versioned migrations. Each one is applied in its
/// own transaction and recorded in `schema_migrations`; a released migration is never edited,
/// later changes are new entries at the end.

#include <span>
#include <string_view>

#include "store/sql/sql.hpp"

namespace llmgw::store::sqlite {

using Migration = sql::Migration;

/// All migrations, by strictly increasing version starting at 1.
std::span<const Migration> migrations() noexcept;

/// The highest version this build knows (the last entry of `migrations()`).
int latest_migration_version() noexcept;

}  // namespace llmgw::store::sqlite
