#include "events/usage_spool.hpp"

#include <cstring>

namespace llmgw::events {

namespace {

void put_u64(std::string& s, std::uint64_t v) { s.append(reinterpret_cast<const char*>(&v), 8); }
void put_str(std::string& s, const std::string& v) {
  const auto n = static_cast<std::uint32_t>(v.size());
  s.append(reinterpret_cast<const char*>(&n), 4);
  s += v;
}

struct Reader {
  const char* p;
  const char* end;
  bool ok = true;
  std::uint64_t u64() {
    std::uint64_t v = 0;
    if (end - p < 8) {
      ok = false;
      return 0;
    }
    std::memcpy(&v, p, 8);
    p += 8;
    return v;
  }
  std::uint32_t u32() {
    std::uint32_t v = 0;
    if (end - p < 4) {
      ok = false;
      return 0;
    }
    std::memcpy(&v, p, 4);
    p += 4;
    return v;
  }
  std::string str() {
    const std::uint32_t n = u32();
    if (!ok || static_cast<std::size_t>(end - p) < n) {
      ok = false;
      return {};
    }
    std::string s(p, n);
    p += n;
    return s;
  }
};

}  // namespace

std::unique_ptr<UsageSpool> UsageSpool::open(const std::string& path, std::size_t capacity,
                                             const std::string& name_prefix) {
  return std::unique_ptr<UsageSpool>(
      new UsageSpool(Spool::open(path, capacity, name_prefix, "usage spool")));
}

bool UsageSpool::append(const store::UsageRecord& r) {
  std::string& s = scratch_;
  s.clear();
  for (const std::string* f : {&r.request_id, &r.client_request_id, &r.key_id, &r.model,
                               &r.upstream_model, &r.provider, &r.endpoint, &r.pricing_model,
                               &r.service_tier, &r.cost_usd, &r.cost_status, &r.prices_json}) {
    put_str(s, *f);
  }
  for (std::int64_t v : {std::int64_t{r.status}, r.prompt_tokens, r.completion_tokens,
                         r.cached_tokens, r.reasoning_tokens, r.cache_write_tokens,
                         r.overhead_us, r.upstream_us, std::int64_t{r.stream},
                         std::int64_t{r.usage_reported}, r.created_at_us}) {
    put_u64(s, static_cast<std::uint64_t>(v));
  }
  return spool_->append(s);
}

void UsageSpool::read(std::size_t max, std::vector<store::UsageRecord>& out,
                      std::vector<std::uint64_t>& seqs, std::uint64_t& next_tail,
                      bool* damaged) const {
  std::vector<std::string> raw;
  std::vector<std::uint64_t> raw_seqs;
  spool_->read(max, raw, raw_seqs, next_tail, damaged);
  for (std::size_t i = 0; i < raw.size(); ++i) {
    const std::string& buf = raw[i];
    Reader rd{buf.data(), buf.data() + buf.size()};
    store::UsageRecord r;
    for (std::string* f : {&r.request_id, &r.client_request_id, &r.key_id, &r.model,
                           &r.upstream_model, &r.provider, &r.endpoint, &r.pricing_model,
                           &r.service_tier, &r.cost_usd, &r.cost_status, &r.prices_json}) {
      *f = rd.str();
    }
    std::int64_t v[11];
    for (auto& x : v) {
      x = static_cast<std::int64_t>(rd.u64());
    }
    if (!rd.ok) {
      continue;  // undecodable: skipped rather than stopping the spool
    }
    r.status = static_cast<int>(v[0]);
    r.prompt_tokens = v[1];
    r.completion_tokens = v[2];
    r.cached_tokens = v[3];
    r.reasoning_tokens = v[4];
    r.cache_write_tokens = v[5];
    r.overhead_us = v[6];
    r.upstream_us = v[7];
    r.stream = v[8] != 0;
    r.usage_reported = v[9] != 0;
    r.created_at_us = v[10];
    out.push_back(std::move(r));
    seqs.push_back(raw_seqs[i]);
  }
}

}  // namespace llmgw::events
