#include "proxy/call.hpp"

#include "core/log.hpp"

#include <boost/asio/co_spawn.hpp>

namespace llmgw::proxy {

using core::Errc;

asio::awaitable<void> Proxy::release_budget(Call& call) {
  if (call.limits != nullptr && call.reservation.active) {
    co_await call.limits->ledger().release(call.reservation, *this);
  }
}

namespace {

/// The budget period containing now, recomputed once per UTC day per thread (calendar
/// arithmetic with gmtime and formatting is not for every request).
const limits::PeriodWindow& current_window(limits::BudgetPeriod p) {
  struct Cached {
    std::int64_t day = -1;
    limits::PeriodWindow window;
  };
  thread_local Cached cache[3];
  const std::int64_t now = core::unix_seconds();
  Cached& c = cache[static_cast<int>(p)];
  if (c.day != now / 86'400) {
    c.day = now / 86'400;
    c.window = limits::period_window(p, now);
  }
  return c.window;
}

/// Sums a key's recorded spend over a period; runs on the blocking pool.
asio::awaitable<core::Money> load_spend(store::Store* store, std::string key_id,
                                        std::string first_day, std::string last_day) {
  core::Money total;
  for (const auto& row : store->spend(key_id, first_day, last_day)) {
    if (auto m = core::Money::parse(row.cost_usd)) {
      total += *m;
    }
  }
  co_return total;
}

}  // namespace

core::Money Proxy::worst_case(http::Exchange& ex, const Call& call,
                              const pricing::ModelPricing& pricing) const {
  // Every body byte a prompt token (no tokenizer makes fewer bytes per token), and the full
  // output allowance.
  const std::int64_t prompt_bound = static_cast<std::int64_t>(ex.request().body.size());
  std::int64_t max_out = call.req.max_output_tokens;
  if (max_out < 0) {
    max_out = pricing.max_output_tokens.value_or(deps_.default_max_output_tokens);
  }
  max_out *= call.req.choices;  // each of the `n` choices may use the whole allowance
  if (call.format == providers::Format::OpenAIEmbeddings) {
    max_out = 0;
  }
  return pricing::worst_case_cost(pricing, prompt_bound, max_out, call.service);
}

std::string Proxy::over_budget_message(const auth::KeyInfo& key, limits::BudgetPeriod period,
                                       const limits::PeriodWindow& window, core::Money spent) {
  return "This API key has reached its budget of $" + key.budget->to_string(2) + " for the " +
         std::string(limits::to_string(period)) + " period " + window.id + " ($" +
         spent.to_string(2) + " spent); the call would risk exceeding it.";
}

namespace {
/// "Rate limit reached …" for the limit that refused (`whose`: "this API key" or "model `m`").
std::string refusal_message(limits::RateVerdict v, const limits::RateLimits& lim,
                            std::string_view whose, std::int64_t estimate) {
  switch (v) {
    case limits::RateVerdict::Requests:
      return "Rate limit reached for requests: " + std::to_string(*lim.rpm) + " per minute for " +
             std::string(whose) + ".";
    case limits::RateVerdict::Tokens:
      return "Rate limit reached for tokens: " + std::to_string(*lim.tpm) + " per minute for " +
             std::string(whose) + ".";
    case limits::RateVerdict::Concurrency:
      return "Too many requests in flight for " + std::string(whose) + " (limit " +
             std::to_string(*lim.max_concurrent) + ").";
    default:
      return "Request too large: about " + std::to_string(estimate) + " tokens, above the limit of " +
             std::to_string(*lim.tpm) + " tokens per minute for " + std::string(whose) + ".";
  }
}
}  // namespace

void Proxy::finish_rate_limits(Call& call) {
  call.limits_finished = true;
  if (!call.tickets[0].active && !call.tickets[1].active) {
    return;
  }
  const std::int64_t actual = call.usage.prompt_total() + call.usage.completion_total();
  call.limits->rate_limiter().finish(call.tickets, actual);
}

asio::awaitable<void> Proxy::cancel_rate_limits(Call& call) {
  if (call.limits != nullptr) {
    co_await call.limits->rate_limiter().cancel(call.tickets);
  }
}

asio::awaitable<bool> Proxy::admit(http::Exchange& ex, Local& local, Call& call) {
  const auth::KeyInfo& key = *call.key;
  const limits::RateLimits key_lim{key.rpm_limit, key.tpm_limit, key.max_concurrent};
  // The model's own limits protect the provider's quota: shared by every key (and alias).
  const limits::RateLimits model_lim{call.route->model_rpm, call.route->model_tpm, std::nullopt};
  // An unpriced model's calls are flagged, not blocked: no budget hold for them.
  const bool budgeted = key.budget && call.route->pricing;
  if (!key_lim.any() && !model_lim.any() && !budgeted) {
    co_return true;
  }
  // Before the call only its size is known: about four bytes of JSON per prompt token, plus
  // the output it asked for. Reconciled with the reported usage afterwards.
  const std::int64_t estimate =
      static_cast<std::int64_t>(ex.request().body.size() / 4) +
      std::max<std::int64_t>(0, call.req.max_output_tokens) * call.req.choices;
  std::string model_subject;
  std::array<limits::RateSubject, 2> subjects;
  std::size_t n = 0;
  if (key_lim.any()) {
    subjects[n++] = {key.id, key_lim};
  }
  if (model_lim.any()) {
    model_subject = "model:" + call.route->model;
    subjects[n++] = {model_subject, model_lim};
  }
  auto period = limits::BudgetPeriod::Monthly;
  limits::PeriodWindow window;
  limits::BudgetRequest budget;
  if (budgeted) {
    period = limits::parse_budget_period(key.budget_period).value_or(period);
    window = current_window(period);  // a copy: the cache may roll over while this waits
    budget = {.key_id = key.id,
              .period_id = window.id,
              .period_end_unix = window.end_unix,
              .budget = *key.budget,
              .amount = worst_case(ex, call, *call.route->pricing)};
  }
  const limits::AdmitRequest rq{.subjects = std::span(subjects.data(), n),
                                .est_tokens = estimate,
                                .call_id = ex.gateway_request_id(),
                                .budget = budgeted ? &budget : nullptr};
  std::array<limits::RateDecision, 2> decisions;
  const auto tickets = std::span(call.tickets.data(), n);
  limits::RateLimiter& limiter = local.limits->rate_limiter();
  call.limits = local.limits.get();
  auto adm = co_await limiter.admit(rq, std::span(decisions.data(), n), tickets, call.reservation);
  if (!adm.unavailable && adm.budget == limits::BudgetStatus::NotLoaded) {
    // The first call of the period (on this gateway, or anywhere with Redis, or Redis lost
    // its data): seed the ledger from the store, then ask again.
    auto [eptr, spent] = co_await asio::co_spawn(
        deps_.blocking, load_spend(&deps_.store, key.id, window.first_day, window.last_day),
        use_tuple);
    if (eptr) {
      // Budgets fail closed: without the spend so far, a call could overrun.
      co_await respond_error(ex, call.format, Errc::NotReady,
                                "The gateway could not read this key's spend; try again.");
      co_return false;
    }
    budget.seed = spent;
    adm = co_await limiter.admit(rq, std::span(decisions.data(), n), tickets, call.reservation);
  }
  if (adm.unavailable) {
    const bool limited = key_lim.any() || model_lim.any();
    const bool closed =
        (budgeted && deps_.budget_failure == limits::FailurePolicy::FailClosed) ||
        (limited && deps_.rate_limit_failure == limits::FailurePolicy::FailClosed);
    note_shared_failure(budgeted ? "rate limiter and budget ledger" : "rate limiter",
                        closed ? limits::FailurePolicy::FailClosed
                               : limits::FailurePolicy::FailOpen);
    if (!closed) {
      co_return true;
    }
    co_await respond_error(ex, call.format, Errc::NotReady,
                              "The gateway cannot check this API key's limits right now.", {},
                              "Retry-After: 1\r\n");
    co_return false;
  }
  if (adm.budget == limits::BudgetStatus::NotLoaded) {
    // The period turned over while the spend was being read: fail closed, the retry loads it.
    co_await respond_error(ex, call.format, Errc::NotReady,
                              "The budget period of this key just changed; try again.");
    co_return false;
  }
  if (adm.budget == limits::BudgetStatus::OverBudget) {
    call.refusal = metrics::Refusal::Budget;
    co_await respond_error(ex, call.format, 
        Errc::BudgetExceeded, over_budget_message(key, period, window, adm.spent), {},
        "Retry-After: " + std::to_string(window.end_unix - core::unix_seconds()) +
            "\r\nx-llmgw-cost-usd: 0\r\nx-llmgw-cost-status: exact\r\n");
    co_return false;
  }
  // The key's windows are the client's: its headers; a key without limits sees the model's.
  if (n > 0) {
    call.rate = decisions[0];
  }
  if (adm.refused == limits::Admission::kNone) {
    co_return true;
  }
  const limits::RateDecision& refused = decisions[adm.refused];
  const bool model_refused = !key_lim.any() || adm.refused == 1;  // the key's come first
  const std::string msg =
      model_refused
          ? refusal_message(refused.verdict, model_lim, "model `" + call.route->model + "`", estimate)
          : refusal_message(refused.verdict, key_lim, "this API key", estimate);
  const bool tokens = refused.verdict == limits::RateVerdict::Tokens ||
                      refused.verdict == limits::RateVerdict::TooLarge;
  call.refusal = model_refused
                     ? (tokens ? metrics::Refusal::ModelTokens : metrics::Refusal::ModelRequests)
                     : (tokens ? metrics::Refusal::KeyTokens : metrics::Refusal::KeyRequests);
  std::string headers = rate_headers(call.rate);
  if (refused.verdict != limits::RateVerdict::TooLarge) {
    headers += "Retry-After: " + std::to_string((refused.retry_after_ms + 999) / 1000) + "\r\n";
  }
  co_await respond_error(ex, call.format, Errc::RateLimited, msg, {}, headers);
  co_return false;
}

void Proxy::settle_budget(Call& call) {
  call.settled = true;
  if (!call.reservation.active) {
    return;
  }
  const core::Money actual = call.cost.known() ? call.cost.total : call.reservation.amount;
  call.limits->ledger().settle(call.reservation, actual, *this);
}
}  // namespace llmgw::proxy
