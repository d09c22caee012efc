// /admin/aliases: other names for models.
#include "admin/handlers.hpp"

#include "core/ids.hpp"

namespace llmgw::admin {

namespace json = boost::json;
using core::Errc;

namespace {

json::object alias_view(const store::AliasRecord& a) {
  return {{"alias", a.config.alias},
          {"object", "alias"},
          {"model", a.config.model},
          {"source", a.source},
          {"created_at", core::format_utc(a.created_at)},
          {"updated_at", core::format_utc(a.updated_at)}};
}

[[noreturn]] void no_alias(const std::string& alias) {
  fail(Errc::NotFound, "No alias '" + alias + "'.", "alias");
}

store::AliasRecord alias_or_404(store::Store& st, const std::string& alias) {
  auto al = st.find_alias(alias);
  if (!al) no_alias(alias);
  return std::move(*al);
}

}  // namespace

Response AdminApi::Impl::list_aliases(Request& r) {
  const auto rows = st().list_aliases();
  return ok(page_in_memory(rows, r, [](const auto& a) { return a.config.alias; }, alias_view));
}

Response AdminApi::Impl::create_alias(Request& r) {
  Body b(r.body);
  store::AliasRecord al;
  al.config.alias = Body::required(b.string("alias"), "alias");
  al.config.model = Body::required(b.string("model"), "model");
  b.finish();
  if (!model_name(al.config.alias)) {
    fail(Errc::InvalidValue, "'alias' must be 1 to 200 characters without spaces.", "alias");
  }
  if (!model_name(al.config.model)) {
    fail(Errc::InvalidValue, "'model' must name a model.", "model");
  }
  al.source = "admin";
  al.created_at = al.updated_at = core::unix_seconds();
  auto a = audit(r, "create", "alias", al.config.alias, nullptr, alias_view(al));
  try {
    st().insert_alias(al, &a);
  } catch (const store::ReferenceError& e) {
    fail(Errc::InvalidValue, e.what(), "model");
  }
  publish();
  return ok(alias_view(al), 201);
}

Response AdminApi::Impl::get_alias(Request& r) {
  return ok(alias_view(alias_or_404(st(), r.params[0])));
}

Response AdminApi::Impl::patch_alias(Request& r) {
  auto al = alias_or_404(st(), r.params[0]);
  const json::value before = alias_view(al);
  Body b(r.body);
  if (auto model = b.string("model")) {
    if (!model_name(*model)) fail(Errc::InvalidValue, "'model' must name a model.", "model");
    al.config.model = std::move(*model);
  }
  b.finish();
  auto a = audit(r, "update", "alias", al.config.alias, before, alias_view(al));
  try {
    if (!st().update_alias(al, &a)) no_alias(r.params[0]);
  } catch (const store::ReferenceError& e) {
    fail(Errc::InvalidValue, e.what(), "model");
  }
  publish();
  return ok(alias_view(al));
}

Response AdminApi::Impl::delete_alias(Request& r) {
  const auto al = alias_or_404(st(), r.params[0]);
  auto a = audit(r, "delete", "alias", al.config.alias, alias_view(al), nullptr);
  if (!st().delete_alias(al.config.alias, &a)) no_alias(r.params[0]);
  publish();
  return deleted(al.config.alias, "alias");
}

}  // namespace llmgw::admin
