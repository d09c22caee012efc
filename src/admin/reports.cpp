// GET /admin/usage: requests, tokens and cost, in total and grouped.
#include "admin/handlers.hpp"

#include "core/ids.hpp"

namespace llmgw::admin {

namespace json = boost::json;
using core::Errc;

namespace {

json::object totals_view(const store::UsageTotals& t, bool with_group) {
  json::object o;
  if (with_group) o["group"] = t.group;
  o["requests"] = t.requests;
  o["unpriced_requests"] = t.unpriced_requests;
  o["prompt_tokens"] = t.prompt_tokens;
  o["completion_tokens"] = t.completion_tokens;
  o["total_tokens"] = t.prompt_tokens + t.completion_tokens;
  o["cached_tokens"] = t.cached_tokens;
  o["reasoning_tokens"] = t.reasoning_tokens;
  o["cost_usd"] = t.cost_usd;
  return o;
}

}  // namespace

Response AdminApi::Impl::usage(Request& r) {
  store::UsageQuery q;
  q.key_id = query_value(r.query, "key_id");
  q.model = query_value(r.query, "model");
  q.provider = query_value(r.query, "provider");
  json::value from = nullptr;
  json::value to = nullptr;
  if (const auto f = query_value(r.query, "from"); !f.empty()) {
    const std::int64_t t = parse_time(f, "from");
    q.from_us = t * 1'000'000;
    from = core::format_utc(t);
  }
  if (const auto e = query_value(r.query, "to"); !e.empty()) {
    const std::int64_t t = parse_time(e, "to");
    q.to_us = t * 1'000'000;
    to = core::format_utc(t);
  }
  const std::string group = query_value(r.query, "group_by");
  if (!group.empty() && group != "day" && group != "model" && group != "key" && group != "provider") {
    fail(Errc::InvalidValue, "'group_by' must be day, model, key or provider.", "group_by");
  }
  const auto totals = st().usage_report(q);
  json::array data;
  if (!group.empty()) {
    q.group_by = group;
    for (const auto& t : st().usage_report(q)) data.push_back(totals_view(t, true));
  }
  return ok(json::object{
      {"object", "usage_report"},
      {"group_by", group.empty() ? json::value(nullptr) : json::value(group)},
      {"from", from},
      {"to", to},
      {"totals", totals.empty() ? json::object{} : totals_view(totals.front(), false)},
      {"data", std::move(data)}});
}

}  // namespace llmgw::admin
