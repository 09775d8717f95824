#!/bin/bash
export PYTHONPATH=$PWD LAZYGRAD_CACHE=$(mktemp -d) TRITON_CACHE_DIR=$(mktemp -d)
timeout 200 python bench/gpt2_train.py --runner "lazygrad jit" --steps 0 2>&1 | grep RESULT | cut -c1-100
timeout 200 python -m cProfile -o $OUT/warm.prof bench/gpt2_train.py --runner "lazygrad jit" --steps 0 2>&1 | grep RESULT | cut -c1-100
python - <<'PY'
import pstats, os
p = pstats.Stats(os.environ["OUT"] + "/warm.prof")
p.sort_stats("cumulative").print_stats(45)
PY
