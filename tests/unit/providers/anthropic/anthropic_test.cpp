#include "providers/anthropic/anthropic.hpp"
#include "providers/anthropic/codec.hpp"

#include <gtest/gtest.h>
