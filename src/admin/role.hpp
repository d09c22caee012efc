#pragma once
/// The admin API's roles, weakest first: a route open to one role is open to those after it.

#include <cstdint>
#include <optional>
#include <string_view>

namespace llmgw::admin {

enum class Role : std::uint8_t { None, Viewer, Editor, Admin };
std::string_view to_string(Role r) noexcept;
/// "viewer" | "editor" | "admin"; nullopt otherwise.
std::optional<Role> parse_role(std::string_view s) noexcept;

}  // namespace llmgw::admin
