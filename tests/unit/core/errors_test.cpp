#include "core/errors.hpp"

#include "core/json.hpp"

#include <gtest/gtest.h>

namespace llmgw::core {
namespace {

TEST(RenderError, ProducesOpenAiShapeWithNulls) {
  const std::string body = render_error(Errc::BadRequest, "bad \"thing\"");
  EXPECT_EQ(body,
            R"({"error":{"message":"bad \"thing\"","type":"invalid_request_error","param":null,"code":null}})");
  EXPECT_TRUE(validate_json(body));
}

TEST(RenderError, EachErrorHasStatusTypeAndValidJson) {
  for (int i = static_cast<int>(Errc::BadRequest); i <= static_cast<int>(Errc::InvalidValue);
       ++i) {
    const auto e = static_cast<Errc>(i);
    EXPECT_GE(http_status(e), 400u);
    EXPECT_FALSE(error_type(e).empty());
    EXPECT_TRUE(validate_json(render_error(e, "m", "p")));
  }
  EXPECT_EQ(http_status(Errc::InvalidApiKey), 401u);
  EXPECT_EQ(error_code_name(Errc::InvalidApiKey), "invalid_api_key");
  EXPECT_EQ(http_status(Errc::UpstreamTimeout), 504u);
  EXPECT_EQ(error_type(Errc::BudgetExceeded), "insufficient_quota");
}

}  // namespace
}  // namespace llmgw::core
