#!/bin/bash
export PYTHONPATH=$PWD LAZYGRAD_CACHE=$(mktemp -d) TRITON_CACHE_DIR=$(mktemp -d)
timeout 500 python bench/gpt2_profile.py > $OUT/profile.txt 2>&1
tail -c 6000 $OUT/profile.txt
