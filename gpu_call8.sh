#!/bin/bash
export PYTHONPATH=$PWD LAZYGRAD_CACHE=$(mktemp -d) TRITON_CACHE_DIR=$(mktemp -d)
timeout 300 python bench/gpt2_train.py --runner "lazygrad jit" --steps 10 > $OUT/run.txt 2>&1
grep -i "warn\|capture\|error" $OUT/run.txt | head -20; grep RESULT $OUT/run.txt | cut -c1-300; tail -3 $OUT/run.txt | cut -c1-300
