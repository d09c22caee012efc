#include "events/audit/redact.hpp"

#include <boost/json.hpp>

#include <stdexcept>

namespace llmgw::audit {

namespace json = boost::json;

namespace {

bool name_char(char c) {
  return c != '.' && c != '[' && c != ']' && c != ',' && c != '*' &&
         static_cast<unsigned char>(c) > ' ';
}

}  // namespace

Redactor::Redactor(std::string_view paths) {
  while (!paths.empty()) {
    const std::size_t comma = paths.find(',');
    std::string_view p = paths.substr(0, comma);
    paths = comma == std::string_view::npos ? std::string_view() : paths.substr(comma + 1);
    while (!p.empty() && p.front() == ' ') p.remove_prefix(1);
    while (!p.empty() && p.back() == ' ') p.remove_suffix(1);
    if (p.empty()) {
      continue;
    }
    const std::string whole(p);
    const auto bad = [&whole](std::string_view why) {
      return std::invalid_argument("redaction path '" + whole + "': " + std::string(why));
    };
    std::vector<Step> steps;
    bool need_name = false;  // after a dot
    while (!p.empty()) {
      if (p.starts_with("[*]")) {
        steps.push_back({Step::AnyElement, {}});
        p.remove_prefix(3);
      } else if (p.front() == '*') {
        steps.push_back({Step::AnyMember, {}});
        p.remove_prefix(1);
      } else if (name_char(p.front())) {
        std::size_t n = 0;
        while (n < p.size() && name_char(p[n])) ++n;
        steps.push_back({Step::Member, std::string(p.substr(0, n))});
        p.remove_prefix(n);
      } else {
        throw bad("expected a member name, * or [*]");
      }
      need_name = false;
      if (!p.empty() && p.front() == '.') {
        p.remove_prefix(1);
        need_name = true;
      } else if (!p.empty() && !p.starts_with("[*]")) {
        throw bad("expected '.' or [*] after a step");
      }
    }
    if (need_name) {
      throw bad("ends with '.'");
    }
    paths_.push_back(std::move(steps));
  }
}

namespace {

template <class Step>
void mask(json::value& v, const std::vector<Step>& steps, std::size_t i) {
  if (i == steps.size()) {
    v = Redactor::kMask;
    return;
  }
  const Step& s = steps[i];
  if (s.kind == Step::AnyElement) {
    if (json::array* a = v.if_array()) {
      for (json::value& e : *a) mask(e, steps, i + 1);
    }
    return;
  }
  json::object* o = v.if_object();
  if (o == nullptr) {
    return;
  }
  if (s.kind == Step::AnyMember) {
    for (auto& m : *o) mask(m.value(), steps, i + 1);
  } else if (json::value* m = o->if_contains(s.name)) {
    mask(*m, steps, i + 1);
  }
}

}  // namespace

std::string Redactor::redact(std::string_view body) const {
  boost::system::error_code ec;
  json::monotonic_resource mr;
  json::value v = json::parse(body, ec, &mr);
  if (ec) {
    return json::serialize(json::value(kMask));
  }
  for (const auto& steps : paths_) {
    mask(v, steps, 0);
  }
  return json::serialize(v);
}

}  // namespace llmgw::audit
