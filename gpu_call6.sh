#!/bin/bash
export PYTHONPATH=$PWD LAZYGRAD_CACHE=$(mktemp -d) TRITON_CACHE_DIR=$(mktemp -d)
timeout 300 python bench/gpu_kernels.py --only matmul 2>&1 | tail -14
timeout 300 python bench/gpt2_train.py --runners "lazygrad jit" --steps 10 2>&1 | tail -1
export LAZYGRAD_CACHE=$(mktemp -d) TRITON_CACHE_DIR=$(mktemp -d)
timeout 400 python bench/gpt2_profile.py > $OUT/profile.txt 2>&1
head -c 1800 $OUT/profile.txt
