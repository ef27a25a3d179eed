// A measurement spike (chain_spike_cuda.cu): the price of one dependent launch by PDL's wait
// against a polled counter. Run by the disabled test OpsCuda.DISABLED_ChainSpike.
#pragma once

namespace kvaudit::engine::cuda {

struct ChainSpikeResult {
  double us_per_launch = 0;  // median graph replay over the launches
  bool data_ok = false;      // every value went through every launch in order
};
// mode 0: PDL wait; 1: counter polled, next launch triggered first; 2: counter, triggered after the
// poll; 3: no wait (the floor; data_ok not meaningful). `blocks` of 256 threads per launch.
ChainSpikeResult chain_spike(int mode, int blocks, int launches, int replays);

}  // namespace kvaudit::engine::cuda
