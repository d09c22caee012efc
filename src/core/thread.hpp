#pragma once
/// Names threads so that `top -H`, `ps -L` and profilers tell them apart, and marks the
/// background ones so that they never stand in front of a request.

#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>

#include <string>

namespace llmgw::core {

/// Sets the calling thread's name (at most 15 characters are kept).
inline void name_this_thread(const std::string& name) {
  pthread_setname_np(pthread_self(), name.substr(0, 15).c_str());
}

/// Makes the calling thread background work: SCHED_BATCH, so that its wake-ups never
/// preempt a running I/O thread, at `nice` (0 to 19; Linux keeps a nice value per thread).
/// Neither needs a privilege. A higher nice value lowers the thread's share of a busy core:
/// a thread that must keep up with the requests (the usage writer, the audit archiver) keeps
/// a share above what it needs, or it falls behind them under a sustained load.
inline void make_this_thread_background(int nice) {
  const sched_param param{};
  pthread_setschedparam(pthread_self(), SCHED_BATCH, &param);
  ::setpriority(PRIO_PROCESS, 0, nice);
}

}  // namespace llmgw::core
