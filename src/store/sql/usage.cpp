#include "store/sql/sql_store.hpp"

#include <algorithm>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_set>
#include <string_view>
#include <vector>

#include "store/sql/common.hpp"

namespace llmgw::store {
namespace {

using sql::Connection;
using sql::Query;
using sql::Transaction;
using sql::TxKind;
using namespace sql_store;

// --- usage and spend

constexpr std::string_view kUsageColumns =
    "request_id, key_id, model, upstream_model, provider, endpoint, status, prompt_tokens,"
    " completion_tokens, cached_tokens, reasoning_tokens, overhead_us, upstream_us, stream,"
    " usage_reported, created_at_us, client_request_id, pricing_model, service_tier,"
    " cache_write_tokens, cost_usd, cost_status, prices";

UsageRecord read_usage(const Query& q) {
  UsageRecord r;
  r.request_id = q.text(0);
  r.key_id = q.text(1);
  r.model = q.text(2);
  r.upstream_model = q.text(3);
  r.provider = q.text(4);
  r.endpoint = q.text(5);
  r.status = static_cast<int>(q.integer(6));
  r.prompt_tokens = q.integer(7);
  r.completion_tokens = q.integer(8);
  r.cached_tokens = q.integer(9);
  r.reasoning_tokens = q.integer(10);
  r.overhead_us = q.integer(11);
  r.upstream_us = q.integer(12);
  r.stream = q.boolean(13);
  r.usage_reported = q.boolean(14);
  r.created_at_us = q.integer(15);
  r.client_request_id = q.text(16);
  r.pricing_model = q.text(17);
  r.service_tier = q.text(18);
  r.cache_write_tokens = q.integer(19);
  r.cost_usd = q.text(20);
  r.cost_status = q.text(21);
  r.prices_json = q.text(22);
  return r;
}

constexpr std::size_t kUsageColumnCount = 23;
/// A usage insert yields the CPU after this many rows (about 0.1 ms of work in SQLite).
constexpr std::size_t kUsageRowsPerYield = 64;
/// The most rows one INSERT may carry (64 rows × 23 columns stays far below PostgreSQL's
/// 65535 parameters).
constexpr std::size_t kMaxUsageRowsPerInsert = 64;

/// INSERT of `rows` usage rows in one statement (1 to kMaxUsageRowsPerInsert; each text
/// made once). A record stored before (a repeated delivery) is skipped; RETURNING names the
/// new ones, whose spend the caller then adds.
const std::string& usage_insert_sql(std::size_t rows) {
  static const std::vector<std::string> kSql = [] {
    std::vector<std::string> out(kMaxUsageRowsPerInsert + 1);
    for (std::size_t n = 1; n <= kMaxUsageRowsPerInsert; ++n) {
      std::string sql = "INSERT INTO usage_records (" + std::string(kUsageColumns) + ") VALUES ";
      std::size_t parameter = 0;
      for (std::size_t r = 0; r < n; ++r) {
        sql += r == 0 ? "(" : ", (";
        for (std::size_t column = 0; column < kUsageColumnCount; ++column) {
          if (column != 0) {
            sql += ", ";
          }
          sql += '$';
          sql += std::to_string(++parameter);
        }
        sql += ')';
      }
      sql += " ON CONFLICT (request_id) DO NOTHING RETURNING request_id";
      out[n] = std::move(sql);
    }
    return out;
  }();
  return kSql[std::clamp<std::size_t>(rows, 1, kMaxUsageRowsPerInsert)];
}

/// Adds every sum to its spend_daily row inside the caller's write transaction. The sums are
/// exact (core::Money). Where the stored cost is NUMERIC (PostgreSQL) the addition is in the
/// statement: exact decimal arithmetic, atomic under concurrent writers (the upsert locks the
/// row until the transaction ends). SQLite only adds integers: the cost is read, added with
/// core::Money and written back as text, under the database's one write lock. Rows are
/// written in SpendSums' order, the same in every writer, so two writers never wait on each
/// other in a cycle.
void write_spend(Connection& c, const detail::SpendSums& sums, std::int64_t now) {
  constexpr std::string_view kAddInSql =
      "INSERT INTO spend_daily (key_id, day, model, cost_usd, requests, unpriced_requests,"
      " prompt_tokens, completion_tokens, updated_at)"
      " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
      " ON CONFLICT (key_id, day, model) DO UPDATE SET"
      " cost_usd = spend_daily.cost_usd + excluded.cost_usd,"
      " requests = spend_daily.requests + excluded.requests,"
      " unpriced_requests = spend_daily.unpriced_requests + excluded.unpriced_requests,"
      " prompt_tokens = spend_daily.prompt_tokens + excluded.prompt_tokens,"
      " completion_tokens = spend_daily.completion_tokens + excluded.completion_tokens,"
      " updated_at = excluded.updated_at";
  constexpr std::string_view kWriteSum =
      "INSERT INTO spend_daily (key_id, day, model, cost_usd, requests, unpriced_requests,"
      " prompt_tokens, completion_tokens, updated_at)"
      " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
      " ON CONFLICT (key_id, day, model) DO UPDATE SET cost_usd = excluded.cost_usd,"
      " requests = spend_daily.requests + excluded.requests,"
      " unpriced_requests = spend_daily.unpriced_requests + excluded.unpriced_requests,"
      " prompt_tokens = spend_daily.prompt_tokens + excluded.prompt_tokens,"
      " completion_tokens = spend_daily.completion_tokens + excluded.completion_tokens,"
      " updated_at = excluded.updated_at";
  const bool in_sql = c.dialect().decimal_arithmetic;
  for (const auto& [key, d] : sums) {
    const std::string day = detail::format_day(key.day);
    core::Money total = d.cost;
    if (!in_sql) {
      Query q = c.query(
          "SELECT cost_usd FROM spend_daily WHERE key_id = $1 AND day = $2 AND model = $3",
          key.key_id, day, key.model);
      if (q.step()) {
        const auto stored = core::Money::parse(q.view(0));
        if (!stored) {
          throw std::runtime_error("spend_daily.cost_usd of key '" + key.key_id + "' on " + day +
                                   " is not an exact decimal");
        }
        total += *stored;
      }
    }
    c.run(in_sql ? kAddInSql : kWriteSum, key.key_id, day, key.model, total.to_string(),
          d.requests, d.unpriced_requests, d.prompt_tokens, d.completion_tokens, now);
  }
}

/// A NUMERIC cost as core::Money writes it ("0.750000" → "0.75"), so that both stores return
/// the same text.
std::string canonical_cost(std::string_view numeric) {
  const auto money = core::Money::parse(numeric);
  return money ? money->to_string() : std::string(numeric);
}


}  // namespace

void SqlStore::insert_usage(std::span<const UsageRecord> batch) {
  insert_usage_marked(batch, {});
}

std::uint64_t SqlStore::spool_mark(const std::string& spool) {
  return call([&](Connection& c) -> std::uint64_t {
    Query r = c.query("SELECT seq FROM spool_marks WHERE spool = $1", spool);
    return r.empty() ? 0 : static_cast<std::uint64_t>(r.first().integer(0));
  });
}

void SqlStore::insert_usage_marked(std::span<const UsageRecord> batch,
                                   std::span<const SpoolMark> marks) {
  try {
    insert_usage_rows(batch, marks);
  } catch (const sql::Error& e) {
    if (e.failure() == sql::Failure::Refused || e.failure() == sql::Failure::Unique) {
      throw RefusedError(e.what());  // these values, not the database
    }
    throw;
  } catch (const std::invalid_argument& e) {
    throw RefusedError(e.what());  // a value the driver cannot send (a NUL in PostgreSQL text)
  }
}

void SqlStore::insert_usage_rows(std::span<const UsageRecord> batch,
                                 std::span<const SpoolMark> marks) {
  if (batch.empty() && marks.empty()) {
    return;
  }
  // Costs are checked once, outside the call (which may run twice): an unparsable cost is
  // unknown rather than a failed batch; an unusual spelling is stored as core::Money writes
  // it. `costs` views the records or `spelled`, which never reallocates.
  std::vector<std::optional<core::Money>> moneys(batch.size());
  std::vector<std::string_view> costs(batch.size());
  std::vector<std::string> spelled;
  spelled.reserve(batch.size());
  for (std::size_t i = 0; i < batch.size(); ++i) {
    const std::string& cost = batch[i].cost_usd;
    if (cost.empty() || !(moneys[i] = core::Money::parse(cost))) {
      continue;
    }
    costs[i] = detail::is_plain_decimal(cost) ? std::string_view(cost)
                                              : std::string_view(spelled.emplace_back(
                                                    moneys[i]->to_string()));
  }
  call([&](Connection& c) {
    Transaction tx(c, TxKind::Write);
    const std::size_t per_insert =
        std::clamp<std::size_t>(c.dialect().usage_rows_per_insert, 1, kMaxUsageRowsPerInsert);
    detail::SpendSums sums;
    const auto add = [&](std::size_t i) {
      const UsageRecord& r = batch[i];
      sums.add(r.key_id, r.created_at_us, r.model, moneys[i], r.prompt_tokens,
               r.completion_tokens);
    };
    std::unordered_set<std::string> returned;  // of a statement of several rows
    std::size_t since_yield = 0;
    for (std::size_t begin = 0; begin < batch.size(); begin += per_insert) {
      const std::size_t end = std::min(batch.size(), begin + per_insert);
      // Text is borrowed: the records and `costs` outlive the statement's run.
      Query q(c.prepare(usage_insert_sql(end - begin)));
      for (std::size_t i = begin; i < end; ++i) {
        const UsageRecord& r = batch[i];
        q.bind_borrowed_at(
            static_cast<int>((i - begin) * kUsageColumnCount) + 1, r.request_id, r.key_id,
            r.model, r.upstream_model, r.provider, r.endpoint, r.status, r.prompt_tokens,
            r.completion_tokens, r.cached_tokens, r.reasoning_tokens, r.overhead_us, r.upstream_us,
            r.stream, r.usage_reported, r.created_at_us, null_if_empty(r.client_request_id),
            null_if_empty(r.pricing_model), null_if_empty(r.service_tier), r.cache_write_tokens,
            null_if_empty(costs[i]), null_if_empty(r.cost_status), null_if_empty(r.prices_json));
      }
      if (end - begin == 1) {
        if (q.step()) {  // stored now; else stored before, its spend counted already
          add(begin);
        }
      } else {
        returned.clear();
        while (q.step()) {
          returned.emplace(q.view(0));
        }
        for (std::size_t i = begin; i < end; ++i) {
          if (returned.erase(batch[i].request_id) != 0) {  // once per stored row
            add(i);
          }
        }
      }
      since_yield += end - begin;
      if (since_yield >= kUsageRowsPerYield) {
        // The batch is milliseconds of CPU: on a core shared with an I/O thread, let a
        // request that became ready run rather than wait for the whole batch.
        since_yield = 0;
        std::this_thread::yield();
      }
    }
    write_spend(c, sums, core::unix_seconds());
    for (const auto& m : marks) {
      c.run(
          "INSERT INTO spool_marks (spool, seq) VALUES ($1, $2)"
          " ON CONFLICT (spool) DO UPDATE SET seq = excluded.seq"
          " WHERE excluded.seq > spool_marks.seq",
          m.spool, static_cast<std::int64_t>(m.seq));
    }
    tx.commit();
  });
}

std::vector<SpendRow> SqlStore::spend(const std::string& key_id, const std::string& from_day,
                                     const std::string& to_day) {
  return call([&](Connection& c) {
    std::vector<SpendRow> out;
    Query r = c.query(
        "SELECT day, model, cost_usd, requests, unpriced_requests, prompt_tokens,"
        " completion_tokens FROM spend_daily WHERE key_id = $1 AND day >= $2 AND day <= $3"
        " ORDER BY day, model",
        key_id, from_day, to_day);
    while (r.step()) {
      const Query& q = r;
      out.push_back(SpendRow{key_id, q.text(0), q.text(1), canonical_cost(q.view(2)), q.integer(3),
                             q.integer(4), q.integer(5), q.integer(6)});
    }
    return out;
  });
}

void SqlStore::rebuild_spend() {
  call([&](Connection& c) {
    Transaction tx(c, TxKind::Write);
    // Writers of usage wait until the rebuild commits, then add their rows to the rebuilt
    // sums; usage committed before the lock is read below (PostgreSQL's READ COMMITTED: each
    // statement sees what committed before it started).
    c.lock_table("spend_daily");
    detail::SpendSums sums;
    {
      Query q = c.query(
          "SELECT key_id, created_at_us, model, cost_usd, prompt_tokens, completion_tokens, id"
          " FROM usage_records");
      q.stream();
      while (q.step()) {
        std::optional<core::Money> cost;
        if (!q.is_null(3)) {
          cost = core::Money::parse(q.view(3));
          if (!cost) {
            throw std::runtime_error("usage_records.cost_usd of row " + q.text(6) +
                                     " is not an exact decimal");
          }
        }
        sums.add(q.view(0), q.integer(1), q.view(2), cost, q.integer(4), q.integer(5));
      }
    }
    c.run("DELETE FROM spend_daily");
    write_spend(c, sums, core::unix_seconds());
    tx.commit();
  });
}

void SqlStore::insert_budget_event(const BudgetEvent& e) {
  call([&](Connection& c) {
    c.run(
        "INSERT INTO budget_events (key_id, period, kind, spent_usd, budget_usd, at_us)"
        " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (key_id, period, kind) DO NOTHING",
        e.key_id, e.period, e.kind, e.spent_usd, e.budget_usd, e.at_us);
  });
}

std::vector<BudgetEvent> SqlStore::budget_events(const std::string& key_id) {
  return call([&](Connection& c) {
    std::vector<BudgetEvent> out;
    Query r = c.query(
        "SELECT period, kind, spent_usd, budget_usd, at_us FROM budget_events WHERE key_id = $1"
        " ORDER BY at_us, id",
        key_id);
    while (r.step()) {
      const Query& q = r;
      out.push_back(BudgetEvent{key_id, q.text(0), q.text(1), q.text(2), q.text(3), q.integer(4)});
    }
    return out;
  });
}

std::int64_t SqlStore::count_usage() {
  return call([](Connection& c) {
    return c.query("SELECT COUNT(*) FROM usage_records").first().integer(0);
  });
}

std::vector<UsageTotals> SqlStore::usage_report(const UsageQuery& q) {
  const bool by_day = q.group_by == "day";
  std::string_view column = "''";  // the column holding a row's group (by day: computed)
  if (q.group_by == "model") {
    column = "model";
  } else if (q.group_by == "key") {
    column = "key_id";
  } else if (q.group_by == "provider") {
    column = "provider";
  } else if (!by_day && !q.group_by.empty()) {
    throw std::invalid_argument("usage report: unknown group_by '" + q.group_by + "'");
  }
  // A filter left out still names its parameter, so that every variant binds the same
  // parameters; one given is an equality the planner can use (a key's rows:
  // usage_records_by_key_time; else the time range: usage_records_by_time).
  std::string sql =
      "SELECT created_at_us, cost_usd, prompt_tokens, completion_tokens,"
      " cached_tokens, reasoning_tokens, id, ";
  sql += column;
  sql += " FROM usage_records WHERE created_at_us >= $1 AND created_at_us < $2";
  sql += q.key_id.empty() ? " AND CAST($3 AS TEXT) = ''" : " AND key_id = $3";
  sql += q.model.empty() ? " AND CAST($4 AS TEXT) = ''" : " AND model = $4";
  sql += q.provider.empty() ? " AND CAST($5 AS TEXT) = ''" : " AND provider = $5";

  // A long read: on a connection of its own where the database has one for reports.
  return sql::call(database(), sql::Use::Report, [&](Connection& c) {
    // Money is added in C++ (exact), never by the database.
    std::map<std::string, detail::UsageSum, std::less<>> sums;
    std::int64_t last_day = std::numeric_limits<std::int64_t>::min();
    std::string day_text;
    Query row = c.query(sql, q.from_us, q.to_us, q.key_id, q.model, q.provider);
    row.stream();
    while (row.step()) {
          std::string_view name = row.view(7);
          if (by_day) {
            // Rows mostly come in time order: format a day once per run of rows.
            if (const std::int64_t day = detail::utc_day(row.integer(0)); day != last_day) {
              last_day = day;
              day_text = detail::format_day(day);
            }
            name = day_text;
          }
          auto it = sums.find(name);
          if (it == sums.end()) {
            it = sums.emplace(std::string(name), detail::UsageSum{}).first;
          }
          detail::UsageSum& sum = it->second;
          ++sum.totals.requests;
          if (row.is_null(1)) {
            ++sum.totals.unpriced_requests;
          } else if (const auto cost = core::Money::parse(row.view(1))) {
            sum.cost += *cost;
          } else {
            throw std::runtime_error("usage_records.cost_usd of row " + row.text(6) +
                                     " is not an exact decimal");
          }
          sum.totals.prompt_tokens += row.integer(2);
          sum.totals.completion_tokens += row.integer(3);
          sum.totals.cached_tokens += row.integer(4);
          sum.totals.reasoning_tokens += row.integer(5);
    }
    return detail::usage_report_rows(sums, q);
  });
}

std::vector<UsageRecord> SqlStore::recent_usage(std::size_t limit) {
  static const std::string kSql = "SELECT " + std::string(kUsageColumns) +
                                  " FROM usage_records ORDER BY created_at_us DESC, id DESC"
                                  " LIMIT $1";
  return call([&](Connection& c) {
    std::vector<UsageRecord> out;
    Query r = c.query(kSql, static_cast<std::int64_t>(std::min<std::size_t>(
                                       limit, std::numeric_limits<std::int64_t>::max())));
    while (r.step()) {
      out.push_back(read_usage(r));
    }
    return out;
  });
}

}  // namespace llmgw::store
