#!/bin/bash
export PYTHONPATH=$PWD
timeout 560 python bench/gpt2_train.py --runners "lazygrad jit,torch.compile + SDPA,torch eager + SDPA" --steps 10 2>&1 | tail -6
