// The audit trail: the record each admin write and sign-in leaves, and GET /admin/audit.
#include "admin/handlers.hpp"

#include "core/ids.hpp"

#include <boost/json/parse.hpp>

#include <charconv>

namespace llmgw::admin {

namespace json = boost::json;
using core::Errc;

namespace {

json::value parse_or_null(const std::string& text) {
  if (text.empty()) return nullptr;
  boost::system::error_code ec;
  auto v = json::parse(text, ec);
  return ec ? json::value(nullptr) : v;
}

json::object audit_view(const store::AuditRecord& a) {
  return {{"id", a.id},
          {"object", "audit_event"},
          {"at", core::format_utc(a.at_us / 1'000'000)},
          {"at_us", a.at_us},
          {"actor", json::object{{"type", a.actor_type}, {"id", a.actor_id}, {"name", a.actor_name}}},
          {"action", a.action},
          {"resource_type", a.resource_type},
          {"resource_id", a.resource_id},
          {"before", parse_or_null(a.before_json)},
          {"after", parse_or_null(a.after_json)},
          {"request_id", a.request_id},
          {"client_ip", a.client_ip}};
}

}  // namespace

store::AuditRecord AdminApi::Impl::audit(const Request& r, std::string_view action,
                                         std::string_view type, std::string id,
                                         const json::value& before, const json::value& after) {
  store::AuditRecord a;
  a.at_us = core::unix_micros();
  a.actor_type = r.who.type.empty() ? "system" : r.who.type;
  a.actor_id = r.who.id;
  a.actor_name = r.who.name;
  a.action = std::string(action);
  a.resource_type = std::string(type);
  a.resource_id = std::move(id);
  a.before_json = before.is_null() ? std::string() : json::serialize(before);
  a.after_json = after.is_null() ? std::string() : json::serialize(after);
  a.request_id = r.request_id;
  a.client_ip = r.client_ip;
  return a;
}

Response AdminApi::Impl::list_audit(Request& r) {
  store::AuditQuery q;
  q.limit = page_limit(r.query);
  if (const auto c = page_cursor(r.query); !c.empty()) {
    std::int64_t id = 0;
    const auto [p, ec] = std::from_chars(c.data(), c.data() + c.size(), id);
    if (ec != std::errc{} || p != c.data() + c.size()) {
      fail(Errc::InvalidValue, "'cursor' is not a cursor this API returned.", "cursor");
    }
    q.before_id = id;
  }
  q.resource_type = query_value(r.query, "resource_type");
  q.resource_id = query_value(r.query, "resource_id");
  q.actor_id = query_value(r.query, "actor_id");
  if (const auto f = query_value(r.query, "from"); !f.empty()) q.from_us = parse_time(f, "from") * 1'000'000;
  if (const auto e = query_value(r.query, "to"); !e.empty()) q.to_us = parse_time(e, "to") * 1'000'000;
  auto rows = st().list_audit(q);
  const bool more = rows.size() > q.limit;
  if (more) rows.resize(q.limit);
  json::array data;
  for (const auto& a : rows) data.push_back(audit_view(a));
  return ok(list_page(std::move(data), more, rows.empty() ? std::string() : std::to_string(rows.back().id)));
}

}  // namespace llmgw::admin
