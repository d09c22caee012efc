#include "http/upstream.hpp"

#include <gtest/gtest.h>

#include <cstdlib>

namespace llmgw::http {
namespace {

TEST(Origin, ParsesSchemesPortsAndPaths) {
  auto o = Origin::parse("https://api.openai.com/v1/");
  ASSERT_TRUE(o);
  EXPECT_TRUE(o->tls);
  EXPECT_EQ(o->host, "api.openai.com");
  EXPECT_EQ(o->port, 443);
  EXPECT_EQ(o->host_header, "api.openai.com");
  EXPECT_EQ(o->base_path, "/v1");
  o = Origin::parse("http://127.0.0.1:18080/stream/v1");
  ASSERT_TRUE(o);
  EXPECT_FALSE(o->tls);
  EXPECT_EQ(o->port, 18080);
  EXPECT_EQ(o->host_header, "127.0.0.1:18080");
  EXPECT_EQ(o->key, "http://127.0.0.1:18080");
  o = Origin::parse("http://[::1]:8000");
  ASSERT_TRUE(o);
  EXPECT_EQ(o->host, "::1");
  EXPECT_EQ(o->base_path, "");
  EXPECT_FALSE(Origin::parse("ftp://x"));
  EXPECT_FALSE(Origin::parse("not a url"));
}

TEST(ProxySettings, UsesProxyUnlessNoProxyMatches) {
  ::setenv("HTTPS_PROXY", "http://user:pass@proxy.local:3128", 1);
  ::setenv("NO_PROXY", "localhost, .internal.example,10.0.0.1:443,[::1]:8080", 1);
  ::unsetenv("https_proxy");
  ::unsetenv("no_proxy");
  const auto p = ProxySettings::from_environment();
  std::string auth;
  auto via = [&](const char* url) { return p.proxy_for(*Origin::parse(url), &auth); };
  const Origin* proxy = via("https://api.openai.com/v1");
  ASSERT_NE(proxy, nullptr);
  EXPECT_EQ(proxy->host, "proxy.local");
  EXPECT_EQ(proxy->port, 3128);
  EXPECT_EQ(auth, "Basic dXNlcjpwYXNz");
  EXPECT_EQ(via("https://localhost/v1"), nullptr);
  EXPECT_EQ(via("https://svc.internal.example/v1"), nullptr);
  EXPECT_EQ(via("https://internal.example/v1"), nullptr);
  EXPECT_EQ(via("https://10.0.0.1/v1"), nullptr);
  EXPECT_NE(via("https://notinternal.example/v1"), nullptr);
  EXPECT_EQ(via("https://[::1]:9000/v1"), nullptr);
  EXPECT_EQ(via("http://api.openai.com/v1"), nullptr);  // no HTTP_PROXY set
  ::setenv("HTTPS_PROXY", "https://proxy.local:3128", 1);
  EXPECT_THROW(ProxySettings::from_environment(), std::runtime_error);
  ::unsetenv("HTTPS_PROXY");
  ::unsetenv("NO_PROXY");
}

}  // namespace
}  // namespace llmgw::http
