#!/bin/bash
export PYTHONPATH=$PWD LAZYGRAD_CACHE=$(mktemp -d) TRITON_CACHE_DIR=$(mktemp -d)
timeout 200 python bench/gpu_kernels.py --only matmul 2>&1 | grep bf16
timeout 360 python bench/gpt2_train.py --runners "lazygrad jit,torch.compile + SDPA" --steps 10 2>&1 | tail -3
