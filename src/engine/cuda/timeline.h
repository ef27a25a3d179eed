// A measurement build's record of when each block of each kernel starts and when its PDL wait
// returns (pdl.cuh), read from %globaltimer: a decode step's launches laid out in time, to see
// which blocks are resident while another kernel runs and what each dependency costs. Compiled in
// only with -DKVAUDIT_CUDA_TIMELINE in the CUDA flags (a separate build: the records add two
// atomics a block); without it nothing registers and these calls do nothing.
// KVAUDIT_CUDA_TIMELINE_OUT names the file the records go to when the backend's process ends
// (tools/timeline_report.py reads it); KVAUDIT_CUDA_TIMELINE_PER_SM, how many each SM keeps.
#pragma once
#include <cstdint>

namespace kvaudit::engine::cuda {

// One record: 24 bytes, as the device writes it.
struct TimelineEvent {
  uint64_t ns;     // %globaltimer
  uint32_t site;   // translation unit index << 16 | line of the pdl_trigger / pdl_wait call
  uint32_t block;  // linear block index
  uint32_t grid;   // blocks in the launch
  uint32_t kind;   // 0: the kernel's first instruction (pdl_trigger), 1: its wait returned, 2: a phase mark (TlMarks); | smid << 8
};
// The device's buffer: per SM (up to kTimelineSms) a counter, then per SM a ring of `per_sm`
// records (the last ones kept).
constexpr int kTimelineSms = 256;
struct TimelineHeader {
  unsigned long long count[kTimelineSms];
  unsigned long long per_sm;
};

// Called at static initialisation by each .cu file compiled with the timeline: `bind` stores the
// buffer's address and the file's index in that file's device symbols; `file` names it in the output.
void timeline_register(void (*bind)(void*, unsigned), const char* file);
// Allocates the buffer and binds every registered file to it (the backend's constructor); the
// records are written to KVAUDIT_CUDA_TIMELINE_OUT at exit. Nothing where no file registered.
void timeline_start();

}  // namespace kvaudit::engine::cuda
