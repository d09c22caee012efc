// /admin/logging: the log level of the process that answers, changed at run time. It is not
// stored: each replica keeps its own, and LOG_LEVEL applies again at the next start.
#include "admin/handlers.hpp"

#include "core/log.hpp"

namespace llmgw::admin {

namespace json = boost::json;
using core::Errc;

namespace {

json::object logging_view() {
  return {{"object", "logging"}, {"level", core::to_string(core::log_level())}};
}

}  // namespace

Response AdminApi::Impl::get_logging(Request&) {
  return ok(logging_view());
}

Response AdminApi::Impl::put_logging(Request& r) {
  Body b(r.body);
  const auto level = b.string("level");
  if (!level) {
    Body::missing("level");
  }
  b.finish();
  core::LogLevel parsed{};
  if (!core::parse_log_level(*level, parsed)) {
    fail(Errc::InvalidValue, "'level' must be debug, info, warn or error.", "level");
  }
  const json::value before = logging_view();
  core::set_log_level(parsed);
  auto a = audit(r, "update", "logging", "", before, logging_view());
  st().insert_audit(a);
  core::LogLine(core::LogLevel::Warn, "log level changed")
      .field("from", std::string_view(before.at("level").as_string()))
      .field("to", *level)
      .emit();
  return ok(logging_view());
}

}  // namespace llmgw::admin
