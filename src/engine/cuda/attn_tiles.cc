// The host half of attention's prefill tiles (ops_cuda.h attn_tiles): which rows of a call share a
// tile. Tiles are cut from each run's first row, so a row's tile depends on its sequence's rows in
// the call only; which tile holds a row never changes its bits (attention_tile_kernel).
#include <algorithm>

#include "engine/cuda/ops_cuda.h"

namespace kvaudit::engine::cuda {

void attn_tiles(std::span<const AttnRow> rows, std::span<const int64_t> order, std::vector<AttnTile>& tiles,
                std::vector<int64_t>& rest) {
  tiles.clear();
  rest.clear();
  const auto n = int64_t(rows.size());
  const auto next = [&](int64_t r) {  // row r + 1 continues row r's run
    return r + 1 < n && rows[size_t(r + 1)].slot == rows[size_t(r)].slot &&
           rows[size_t(r + 1)].pos == rows[size_t(r)].pos + 1;
  };
  const auto starts = [&](int64_t r) { return r == 0 || !next(r - 1); };
  for (const int64_t r : order) {
    if (!starts(r)) continue;  // inside a run: its first row placed it
    int64_t end = r + 1;
    while (next(end - 1)) ++end;
    if (end - r < 2) {
      rest.push_back(r);
      continue;
    }
    for (int64_t t = r; t < end; t += kAttnTileRows) tiles.push_back({t, std::min<int64_t>(kAttnTileRows, end - t)});
  }
}

}  // namespace kvaudit::engine::cuda
