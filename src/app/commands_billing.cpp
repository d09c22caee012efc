#include "app/commands.hpp"
#include "app/default_catalog.hpp"
#include "app/prices.hpp"
#include "app/store_factory.hpp"
#include "core/ids.hpp"
#include "core/money.hpp"
#include "limits/budget_period.hpp"

#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>

namespace llmgw::app {

namespace {

int fail(const std::string& msg) {
  std::fprintf(stderr, "llmgw: %s\n", msg.c_str());
  return 1;
}

}  // namespace

int run_catalog_import(const core::Settings& settings, const std::string& file,
                       const std::vector<std::string>& providers, bool verbose) {
  std::string text;
  std::string source = "the built-in catalog (LiteLLM, catalog/litellm)";
  if (!file.empty()) {
    std::ifstream in(file, std::ios::binary);
    if (!in) {
      return fail(file + ": cannot be read");
    }
    std::stringstream ss;
    ss << in.rdbuf();
    text = ss.str();
    source = file;
  } else {
    text = std::string(default_catalog_json());
  }
  try {
    const auto owned_store = open_store(settings);
    store::Store& st = *owned_store;
    st.migrate();
    const auto s =
        import_catalog(st, text, std::set<std::string>(providers.begin(), providers.end()));
    std::printf("imported %s\n", source.c_str());
    std::printf("added %zu, changed %zu, unchanged %zu priced models\n", s.result.added.size(),
                s.result.changed.size(), s.result.unchanged);
    std::printf("skipped %zu entries without a price this gateway can use, %zu by --providers\n",
                s.parse.skipped_no_price, s.parse.skipped_provider);
    if (!s.parse.duplicate_fields.empty()) {
      std::printf("fields repeating a component already given (skipped):");
      for (const auto& [field, n] : s.parse.duplicate_fields) {
        std::printf(" %s(%zu)", field.c_str(), n);
      }
      std::printf("\n");
    }
    if (!s.parse.unknown_fields.empty()) {
      std::printf("price fields not understood (skipped):");
      for (const auto& [field, n] : s.parse.unknown_fields) {
        std::printf(" %s(%zu)", field.c_str(), n);
      }
      std::printf("\n");
    }
    const std::size_t show = verbose ? SIZE_MAX : 20;
    auto list = [&](const char* what, const std::vector<std::string>& names) {
      for (std::size_t i = 0; i < names.size() && i < show; ++i) {
        std::printf("  %s %s\n", what, names[i].c_str());
      }
      if (names.size() > show) {
        std::printf("  … and %zu more %s (--verbose lists all)\n", names.size() - show, what);
      }
    };
    list("added", s.result.added);
    list("changed", s.result.changed);
    return 0;
  } catch (const std::exception& e) {
    return fail(e.what());
  }
}

int run_usage(const core::Settings& settings, const std::string& key_id, const std::string& from,
              const std::string& to, const std::string& by) {
  std::int64_t from_t = 0;
  std::int64_t to_t = 0;
  if (!from.empty() && !core::parse_utc(from, from_t)) {
    return fail("--from: '" + from + "' is not a date (YYYY-MM-DD) or an RFC 3339 time");
  }
  if (!to.empty() && !core::parse_utc(to, to_t)) {
    return fail("--to: '" + to + "' is not a date (YYYY-MM-DD) or an RFC 3339 time");
  }
  if (by != "day" && by != "model") {
    return fail("--by must be day or model");
  }
  // Default range: the current calendar month (UTC).
  const auto month = limits::period_window(limits::BudgetPeriod::Monthly, core::unix_seconds());
  // Spend is kept per UTC day: a time (with any offset) stands for its UTC day.
  const std::string first = from.empty() ? month.first_day : limits::utc_day(from_t);
  const std::string last = to.empty() ? month.last_day : limits::utc_day(to_t);
  try {
    const auto owned_store = open_store(settings);
    store::Store& st = *owned_store;
    st.migrate();
    if (!st.find_key_by_id(key_id)) {
      return fail("no key with id '" + key_id + "'");
    }
    struct Sum {
      std::int64_t requests = 0, unpriced = 0, prompt = 0, completion = 0;
      core::Money cost;
    };
    std::map<std::string, Sum> groups;
    Sum total;
    for (const auto& row : st.spend(key_id, first, last)) {
      Sum& g = groups[by == "day" ? row.day : row.model];
      const core::Money cost = core::Money::parse(row.cost_usd).value_or(core::Money{});
      for (Sum* s : {&g, &total}) {
        s->requests += row.requests;
        s->unpriced += row.unpriced_requests;
        s->prompt += row.prompt_tokens;
        s->completion += row.completion_tokens;
        s->cost += cost;
      }
    }
    std::printf("usage of %s from %s to %s (UTC)\n", key_id.c_str(), first.c_str(), last.c_str());
    std::printf("%-28s %10s %14s %14s %20s %9s\n", by == "day" ? "DAY" : "MODEL", "REQUESTS",
                "PROMPT_TOK", "COMPLETION_TOK", "COST_USD", "UNPRICED");
    auto line = [](const std::string& name, const Sum& s) {
      std::printf("%-28s %10lld %14lld %14lld %20s %9lld\n", name.c_str(),
                  static_cast<long long>(s.requests), static_cast<long long>(s.prompt),
                  static_cast<long long>(s.completion), s.cost.to_string(6).c_str(),
                  static_cast<long long>(s.unpriced));
    };
    for (const auto& [name, s] : groups) {
      line(name, s);
    }
    line("TOTAL", total);
    return 0;
  } catch (const std::exception& e) {
    return fail(e.what());
  }
}

}  // namespace llmgw::app
