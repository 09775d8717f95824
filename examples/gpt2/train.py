"""Train a GPT-2 with lazygrad on nanoGPT-format data (train.bin / val.bin of uint16 tokens).

Each step (forward, backward, gradient clipping and the AdamW update) is one lazygrad schedule. Checkpoints are
safetensors files written atomically; --resume continues exactly where the checkpoint stopped (the batches are a
function of the seed and the step, so the loss sequence is the one an uninterrupted run gives).

Example: python examples/gpt2/train.py --config tiny --steps 200 --batch 16"""
from __future__ import annotations
import argparse, json, math, sys, time
from pathlib import Path
import numpy as np
sys.path.insert(0, str(Path(__file__).parent))
import lazygrad
from lazygrad import Tensor, no_grad
from lazygrad.nn import autocast, save_safetensors, load_safetensors
from lazygrad.optim import AdamW, clip_grad_norm_, cosine_warmup_lr
from model import GPT, GPTConfig, CONFIGS, pad_vocab


def parse_args(argv=None):
  ap = argparse.ArgumentParser(description="Train a GPT-2 with lazygrad")
  ap.add_argument("--data", default=str(Path(__file__).parent / "data" / "shakespeare_char"),
                  help="folder with train.bin, val.bin and (optionally) meta.json")
  ap.add_argument("--config", choices=list(CONFIGS), default="tiny")
  ap.add_argument("--n-layer", type=int); ap.add_argument("--n-head", type=int); ap.add_argument("--n-embd", type=int)
  ap.add_argument("--vocab-size", type=int, help="model vocabulary (default: the data's, padded to a multiple of 64)")
  ap.add_argument("--batch", type=int, default=16)
  ap.add_argument("--seq", type=int, help="sequence length (default: the config's block size)")
  ap.add_argument("--steps", type=int, default=500)
  ap.add_argument("--lr", type=float, default=1e-3)
  ap.add_argument("--min-lr", type=float, default=1e-4)
  ap.add_argument("--warmup", type=int, default=50)
  ap.add_argument("--weight-decay", type=float, default=0.1)
  ap.add_argument("--grad-clip", type=float, default=1.0)
  ap.add_argument("--dropout", type=float, default=0.0)
  ap.add_argument("--device", default=None, help="numpy, triton or triton-interp (default: a GPU when present)")
  ap.add_argument("--precision", choices=("fp32", "bf16"), default="fp32", help="bf16: autocast, fp32 master weights")
  ap.add_argument("--eval-interval", type=int, default=100)
  ap.add_argument("--eval-iters", type=int, default=10)
  ap.add_argument("--log-interval", type=int, default=10)
  ap.add_argument("--ckpt-dir", default=None, help="write ckpt.safetensors here at each eval")
  ap.add_argument("--resume", action="store_true", help="continue from ckpt-dir/ckpt.safetensors")
  ap.add_argument("--seed", type=int, default=1337)
  ap.add_argument("--no-jit", dest="jit", action="store_false",
                  help="rebuild the graph every step instead of replaying the captured kernels")
  ap.add_argument("--time-limit", type=float, default=None, help="stop after this many seconds (a checkpoint is kept)")
  return ap.parse_args(argv)


class Batches:
  """Random windows of the token file; batch k of a split is a pure function of (seed, split, k)."""
  def __init__(self, folder: str, seq: int, batch: int, seed: int):
    self.data = {s: np.memmap(Path(folder) / f"{s}.bin", dtype=np.uint16, mode="r") for s in ("train", "val")}
    self.seq, self.batch, self.seed = seq, batch, seed

  def get(self, split: str, k: int, device) -> tuple[Tensor, Tensor]:
    data = self.data[split]
    ix = np.random.default_rng([self.seed, split == "val", k]).integers(0, len(data) - self.seq - 1, self.batch)
    x = np.stack([data[i:i + self.seq] for i in ix]).astype(np.int64)
    y = np.stack([data[i + 1:i + 1 + self.seq] for i in ix]).astype(np.int64)
    return Tensor(x, device=device), Tensor(y, device=device)


class Trainer:
  def __init__(self, args):
    self.args = args
    meta_path = Path(args.data) / "meta.json"
    self.meta = json.loads(meta_path.read_text()) if meta_path.exists() else {"vocab_size": 50257}
    cfg = GPTConfig(**CONFIGS[args.config])
    for k in ("n_layer", "n_head", "n_embd"):
      if getattr(args, k) is not None: setattr(cfg, k, getattr(args, k))
    cfg.vocab_size, cfg.dropout = pad_vocab(args.vocab_size or self.meta["vocab_size"]), args.dropout
    self.seq = args.seq or cfg.block_size
    cfg.block_size = max(cfg.block_size, self.seq)
    lazygrad.manual_seed(args.seed)
    self.model = GPT(cfg, device=args.device)
    decay = [p for p in self.model.parameters() if p.ndim >= 2]
    no_decay = [p for p in self.model.parameters() if p.ndim < 2]
    self.opts = [AdamW(decay, lr=args.lr, betas=(0.9, 0.95), weight_decay=args.weight_decay),
                 AdamW(no_decay, lr=args.lr, betas=(0.9, 0.95), weight_decay=0.0)]
    self.batches = Batches(args.data, self.seq, args.batch, args.seed)
    self.step = 0
    self.step_kernels = lazygrad.jit(self._step_kernels) if args.jit else self._step_kernels
    self.ckpt = Path(args.ckpt_dir) / "ckpt.safetensors" if args.ckpt_dir else None
    if args.resume:
      if self.ckpt is None or not self.ckpt.exists(): raise SystemExit(f"--resume: no checkpoint at {self.ckpt}")
      self.load(self.ckpt)

  # checkpoints: the model, both optimizers' state and the step
  def state(self) -> dict:
    out = {f"model.{k}": v for k, v in self.model.state_dict().items() if k != "lm_head.weight"}
    for i, opt in enumerate(self.opts):
      for j, (m, v) in enumerate(zip(opt.m, opt.v)): out[f"opt{i}.m.{j}"], out[f"opt{i}.v.{j}"] = m, v
      out[f"opt{i}.t"] = opt.t
    return out

  def save(self, path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    save_safetensors(self.state(), path, {"step": self.step, "config": json.dumps(self.model.config_dict()),
                                          "meta": json.dumps(self.meta)})

  def load(self, path: Path):
    tensors, meta = load_safetensors(path, device=self.args.device)
    self.model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")}, strict=False)
    for i, opt in enumerate(self.opts):
      for j, (m, v) in enumerate(zip(opt.m, opt.v)):
        m.node, v.node = tensors[f"opt{i}.m.{j}"].node, tensors[f"opt{i}.v.{j}"].node
      opt.t.node = tensors[f"opt{i}.t"].node
    self.step = int(meta["step"])

  def loss_of(self, x: Tensor, y: Tensor) -> Tensor:
    if self.args.precision == "bf16":
      with autocast("bfloat16"): return self.model(x, y)[1]
    return self.model(x, y)[1]

  def _step_kernels(self, x: Tensor, y: Tensor, lr: Tensor) -> Tensor:
    """Forward, backward, clipping and the AdamW update as one schedule (replayed by lazygrad.jit)."""
    for opt in self.opts: opt.lr = lr
    loss = self.loss_of(x, y)
    for opt in self.opts: opt.zero_grad()
    loss.backward()
    if self.args.grad_clip: clip_grad_norm_(self.model.parameters(), self.args.grad_clip)
    lazygrad.realize(loss, *(t for opt in self.opts for t in opt.schedule_step()))
    return loss

  def train_step(self) -> float:
    a = self.args
    lr = cosine_warmup_lr(self.step, a.warmup, a.steps, a.lr, a.min_lr)
    x, y = self.batches.get("train", self.step, a.device)
    out = self.step_kernels(x, y, Tensor([lr], device=a.device))
    self.step += 1
    return (out[0] if isinstance(out, tuple) else out).item()

  @no_grad()
  def evaluate(self) -> float:
    losses = [self.loss_of(*self.batches.get("val", k, self.args.device)).item() for k in range(self.args.eval_iters)]
    return float(np.mean(losses))

  def run(self) -> list[float]:
    a = self.args
    losses, t_start = [], time.perf_counter()
    print(f"lazygrad GPT: {self.model.num_params() / 1e6:.2f}M parameters, config {a.config}, device "
          f"{self.model.wte.weight.device}, {a.precision}, batch {a.batch} x {self.seq} tokens")
    t_log, tokens = time.perf_counter(), 0
    while self.step < a.steps:
      t0 = time.perf_counter()
      losses.append(self.train_step())
      if self.step == 1: print(f"first step (scheduling and compiling included): {time.perf_counter() - t0:.1f} s")
      tokens += a.batch * self.seq
      if self.step % a.log_interval == 0 or self.step == a.steps:
        dt = time.perf_counter() - t_log
        done = int(30 * self.step / a.steps)
        print(f"step {self.step:5d}/{a.steps} [{'=' * done}{' ' * (30 - done)}] loss {losses[-1]:.4f} | "
              f"{tokens / dt:,.0f} tok/s | lr {cosine_warmup_lr(self.step - 1, a.warmup, a.steps, a.lr, a.min_lr):.2e}",
              flush=True)
        t_log, tokens = time.perf_counter(), 0
      out_of_time = a.time_limit is not None and time.perf_counter() - t_start > a.time_limit
      if self.step % a.eval_interval == 0 or self.step == a.steps or out_of_time:
        print(f"step {self.step:5d}: val loss {self.evaluate():.4f}", flush=True)
        if self.ckpt is not None: self.save(self.ckpt)
      if out_of_time:
        print(f"time limit of {a.time_limit:.0f} s reached at step {self.step}")
        break
    return losses


def main(argv=None):
  return Trainer(parse_args(argv)).run()


if __name__ == "__main__":
  main()
