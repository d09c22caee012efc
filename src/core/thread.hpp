#pragma once
/// Names threads so that `top -H`, `ps -L` and profilers tell them apart.

#include <pthread.h>

#include <string>

namespace llmgw::core {

/// Sets the calling thread's name (at most 15 characters are kept).
inline void name_this_thread(const std::string& name) {
  pthread_setname_np(pthread_self(), name.substr(0, 15).c_str());
}

}  // namespace llmgw::core
