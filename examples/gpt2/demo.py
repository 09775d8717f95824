"""The main demo: prepare the Shakespeare character dataset, train a small GPT for a few minutes on the default
device (numpy on a CPU, Triton on a GPU), printing progress, then print a sample.

Run: ./dev demo [--minutes 3]"""
import argparse, sys
from pathlib import Path
HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
import prepare, train, sample
from lazygrad.runtime.device import default_device_name


def main():
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--minutes", type=float, default=3.0, help="training time")
  args = ap.parse_args()
  data = HERE / "data" / "shakespeare_char"
  if not (data / "train.bin").exists():
    sys.argv = ["prepare.py", "--out", str(data)]
    prepare.main()
  gpu = default_device_name() == "triton"
  ckpt = HERE / "out" / ("small" if gpu else "tiny")
  config = ["--config", "small", "--batch", "32", "--steps", "2000", "--lr", "1e-3", "--eval-interval", "250",
            "--precision", "bf16"] if gpu else \
           ["--config", "tiny", "--batch", "16", "--steps", "600", "--lr", "2e-3", "--eval-interval", "100"]
  train.main(["--data", str(data), *config, "--warmup", "20", "--min-lr", "1e-4", "--log-interval", "10",
              "--ckpt-dir", str(ckpt), "--time-limit", str(args.minutes * 60)])
  print("\n--- sample ---")
  sample.main(["--ckpt", str(ckpt / "ckpt.safetensors"), "--prompt", "ROMEO:\n", "--tokens", "300",
               "--temperature", "0.8"])


if __name__ == "__main__":
  main()
