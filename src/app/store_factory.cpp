#include "app/store_factory.hpp"

#include "store/postgres/pg_store.hpp"
#include "store/sqlite/sqlite_store.hpp"

namespace llmgw::app {

std::unique_ptr<store::Store> open_store(const core::Settings& settings) {
  if (!settings.database_url.empty()) {
    return std::make_unique<store::PgStore>(settings.database_url);
  }
  return std::make_unique<store::SqliteStore>(settings.database_path());
}

std::string describe_store(const core::Settings& settings) {
  if (!settings.database_url.empty()) {
    return store::PgStore(settings.database_url).description();
  }
  return settings.database_path();
}

}  // namespace llmgw::app
