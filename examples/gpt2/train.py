"""Train a GPT-2 with lazygrad on nanoGPT-format data (train.bin / val.bin of uint16 tokens).

Each step (forward, backward, gradient clipping and the AdamW update) is one lazygrad schedule, captured once and
replayed by lazygrad.jit. Checkpoints are safetensors files written atomically; --resume continues exactly where the
checkpoint stopped, with the model stored there (the batches and the dropout masks are a function of the seed and the
step, so with the same training options the loss sequence is the one an uninterrupted run gives).

Data parallel: `torchrun --nproc_per_node=N examples/gpt2/train.py ...` trains on N processes (GPUs, or CPU processes
on the numpy device): --batch is each rank's, the global batch is N times it (rank r takes its slice of the global
batch k, so N ranks see the batches one process with an N times larger --batch sees), gradients are averaged across
ranks before clipping, and only rank 0 logs, evaluates and writes checkpoints. The jit replays the all-reduces in their
place among the step's kernels (on a GPU, launched from Python rather than as one CUDA graph).

Example: python examples/gpt2/train.py --config tiny --steps 200 --batch 16"""
from __future__ import annotations
import argparse, json, math, os, sys, time
from pathlib import Path
import numpy as np
sys.path.insert(0, str(Path(__file__).parent))
import lazygrad
from lazygrad import Tensor, no_grad, distributed as dist
from lazygrad.nn import autocast, save_safetensors, load_safetensors, SafetensorsError
from lazygrad.runtime.device import get_device
from lazygrad.runtime.triton_device import DeviceUnavailable
from lazygrad.optim import AdamW, clip_grad_norm_, cosine_warmup_lr
from model import GPT, GPTConfig, CONFIGS, pad_vocab


def parse_args(argv=None):
  ap = argparse.ArgumentParser(description="Train a GPT-2 with lazygrad")
  ap.add_argument("--data", default=str(Path(__file__).parent / "data" / "shakespeare_char"),
                  help="folder with train.bin, val.bin and (optionally) meta.json")
  ap.add_argument("--config", choices=list(CONFIGS), help="model size (default: tiny; with --resume: the checkpoint's)")
  ap.add_argument("--n-layer", type=int); ap.add_argument("--n-head", type=int); ap.add_argument("--n-embd", type=int)
  ap.add_argument("--vocab-size", type=int, help="model vocabulary (default: the data's, padded to a multiple of 64)")
  ap.add_argument("--batch", type=int, default=16)
  ap.add_argument("--seq", type=int, help="sequence length, at most the block size (default: the block size)")
  ap.add_argument("--steps", type=int, default=500)
  ap.add_argument("--lr", type=float, default=1e-3)
  ap.add_argument("--min-lr", type=float, default=1e-4)
  ap.add_argument("--warmup", type=int, default=50)
  ap.add_argument("--weight-decay", type=float, default=0.1)
  ap.add_argument("--grad-clip", type=float, default=1.0, help="0: no clipping")
  ap.add_argument("--dropout", type=float, default=0.0)
  ap.add_argument("--device", default=None, help="numpy, triton or triton-interp (default: a GPU when present)")
  ap.add_argument("--precision", choices=("fp32", "bf16"), default="fp32", help="bf16: autocast, fp32 master weights")
  ap.add_argument("--eval-interval", type=int, default=100)
  ap.add_argument("--eval-iters", type=int, default=10)
  ap.add_argument("--log-interval", type=int, default=10)
  ap.add_argument("--ckpt-dir", default=None, help="write ckpt.safetensors here at each eval")
  ap.add_argument("--resume", action="store_true",
                  help="continue from ckpt-dir/ckpt.safetensors (the model's size comes from the checkpoint)")
  ap.add_argument("--seed", type=int, default=1337)
  ap.add_argument("--no-jit", dest="jit", action="store_false",
                  help="rebuild the graph every step instead of replaying the captured kernels")
  ap.add_argument("--time-limit", type=float, default=None, help="stop after this many seconds (a checkpoint is kept)")
  args = ap.parse_args(argv)
  check_args(ap, args)
  return args


# the lowest value each numeric option takes (options left out are None and not checked)
AT_LEAST = {"--batch": 1, "--seq": 1, "--n-layer": 1, "--n-head": 1, "--n-embd": 1, "--vocab-size": 1, "--steps": 0,
            "--eval-interval": 1, "--eval-iters": 1, "--log-interval": 1, "--warmup": 0, "--lr": 0, "--min-lr": 0,
            "--weight-decay": 0, "--grad-clip": 0, "--seed": 0}


def check_args(ap: argparse.ArgumentParser, args):
  """Reject values no run can use (argparse's usage and a one-line message); checks that need the data or the
  checkpoint are the Trainer's."""
  for opt, low in AT_LEAST.items():
    v = getattr(args, opt[2:].replace("-", "_"))
    if isinstance(v, float) and not math.isfinite(v): ap.error(f"{opt} must be a finite number, got {v}")
    if v is not None and v < low: ap.error(f"{opt} must be >= {low}, got {v}")
  if not 0 <= args.dropout < 1: ap.error(f"--dropout must be in [0, 1), got {args.dropout}")
  if args.time_limit is not None and not args.time_limit > 0:
    ap.error(f"--time-limit must be a positive number of seconds, got {args.time_limit}")
  if args.resume and args.ckpt_dir is None: ap.error("--resume needs --ckpt-dir, the folder holding ckpt.safetensors")


def fail(msg: str):
  """Stop with a one-line message (no traceback): for problems with the data, the checkpoint or option values."""
  raise SystemExit(f"train.py: error: {msg}")


def few(items: list[str], n: int = 3) -> str: return ", ".join(items[:n]) + (", ..." if len(items) > n else "")


def read_data(folder: Path) -> tuple[dict[str, np.ndarray], dict | None]:
  """The train and val token arrays (memory-mapped) and meta.json's contents (None without one)."""
  if not folder.is_dir(): fail(f"--data {folder}: no such folder (examples/gpt2/prepare.py makes one)")
  data = {}
  for split in ("train", "val"):
    f = folder / f"{split}.bin"
    if not f.is_file(): fail(f"--data {folder}: no {split}.bin in it (examples/gpt2/prepare.py writes one)")
    if (size := f.stat().st_size) < 2 or size % 2:
      fail(f"--data: {f} has {size} bytes, not a non-empty array of uint16 token ids")
    data[split] = np.memmap(f, dtype=np.uint16, mode="r")
  meta_path = folder / "meta.json"
  if not meta_path.exists(): return data, None
  try: meta = json.loads(meta_path.read_text())
  except (UnicodeDecodeError, json.JSONDecodeError) as e: fail(f"--data: {meta_path} is not valid JSON ({e})")
  if not isinstance(meta, dict) or type(meta.get("vocab_size")) is not int or meta["vocab_size"] < 1:
    fail(f"--data: {meta_path} has no positive integer vocab_size")
  return data, meta


def device_memory(device: str) -> int:
  """Bytes of memory on `device`: the GPU's for triton, the machine's RAM otherwise."""
  if device == "triton":
    import torch
    return torch.cuda.get_device_properties(torch.cuda.current_device()).total_memory
  return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def min_step_bytes(cfg: GPTConfig, batch: int, seq: int) -> int:
  """A lower bound on a training step's memory: float32 weights, gradients and both AdamW moments, the logits and
  one (batch, seq, n_embd) activation per layer that backward keeps."""
  params = (cfg.vocab_size + cfg.block_size) * cfg.n_embd + 12 * cfg.n_layer * cfg.n_embd ** 2
  return 4 * (4 * params + batch * seq * (cfg.vocab_size + cfg.n_layer * cfg.n_embd))


class Batches:
  """Random windows of the token arrays; global batch k of a split (`batch` windows per rank) is a pure function of
  (seed, split, k, the global batch size), and rank r reads its r-th slice."""
  def __init__(self, data: dict[str, np.ndarray], seq: int, batch: int, seed: int, rank: int = 0, world: int = 1):
    self.data, self.seq, self.batch, self.seed, self.rank, self.world = data, seq, batch, seed, rank, world

  def get(self, split: str, k: int, device) -> tuple[Tensor, Tensor]:
    data = self.data[split]
    ix = np.random.default_rng([self.seed, split == "val", k]).integers(0, len(data) - self.seq - 1,
                                                                          self.batch * self.world)
    ix = ix[self.rank * self.batch:(self.rank + 1) * self.batch]
    x = np.stack([data[i:i + self.seq] for i in ix]).astype(np.int64)
    y = np.stack([data[i + 1:i + 1 + self.seq] for i in ix]).astype(np.int64)
    return Tensor(x, device=device), Tensor(y, device=device)


class Trainer:
  def __init__(self, args):
    self.args = args
    try: device = get_device(args.device).name
    except (ValueError, DeviceUnavailable) as e: fail(f"--device {args.device}: {e}")
    data, meta = read_data(Path(args.data))
    # without meta.json the data is GPT-2 BPE: the model gets GPT-2's vocabulary, which must cover the data's ids
    self.meta = meta or {"vocab_size": 50257}
    data_vocab = meta["vocab_size"] if meta else 1 + int(max(d.max() for d in data.values()))
    self.ckpt = Path(args.ckpt_dir) / "ckpt.safetensors" if args.ckpt_dir else None
    if self.ckpt is not None:
      try: self.ckpt.parent.mkdir(parents=True, exist_ok=True)
      except OSError as e: fail(f"--ckpt-dir {args.ckpt_dir}: cannot make the folder ({e.strerror})")
    saved = self.read_checkpoint() if args.resume else None
    cfg = self.resumed_config(saved[1]) if saved else self.new_config()
    cfg.dropout = args.dropout
    self.seq = args.seq or cfg.block_size
    self.check_run(cfg, data, data_vocab, "meta.json" if meta else "its largest token id + 1", device, bool(saved))
    lazygrad.manual_seed(args.seed)
    self.model = GPT(cfg, device=args.device)
    decay = [p for p in self.model.parameters() if p.ndim >= 2]
    no_decay = [p for p in self.model.parameters() if p.ndim < 2]
    self.opts = [AdamW(decay, lr=args.lr, betas=(0.9, 0.95), weight_decay=args.weight_decay),
                 AdamW(no_decay, lr=args.lr, betas=(0.9, 0.95), weight_decay=0.0)]
    self.world, self.main = dist.world_size(), dist.is_main()
    self.batches = Batches(data, self.seq, args.batch, args.seed, dist.rank(), self.world)
    self.step = 0
    step = self._step_ranks if self.world > 1 else self._step_kernels
    self.step_kernels = lazygrad.jit(step) if args.jit else step
    if saved: self.load(*saved)
    dist.broadcast_parameters(self.model.parameters())   # every rank from rank 0's weights (one process: nothing)

  def check_run(self, cfg: GPTConfig, data: dict, data_vocab: int, vocab_source: str, device: str, resumed: bool):
    """The model config, the data, the sequence length and the device's memory fit together (checked before
    anything is built)."""
    a = self.args
    if cfg.n_embd % cfg.n_head:
      fail(f"n_embd {cfg.n_embd} is not divisible by n_head {cfg.n_head} (set by --n-embd, --n-head or --config); "
           f"pick an --n-head that divides {cfg.n_embd}")
    if a.vocab_size is not None and a.vocab_size < data_vocab:
      fail(f"--vocab-size {a.vocab_size} is smaller than the data's vocabulary of {data_vocab} ({vocab_source}); "
           f"use --vocab-size {data_vocab} or more, or leave it out")
    if cfg.vocab_size < data_vocab:
      fail(f"the model's vocabulary of {cfg.vocab_size} ({'the checkpoint' if resumed else 'GPT-2'}'s) is smaller than "
           f"the data's {data_vocab} ({vocab_source}); " +
           ("resume on the data the checkpoint was trained on" if resumed else f"pass --vocab-size {data_vocab}"))
    if self.seq > cfg.block_size:
      fail(f"--seq {self.seq} is longer than the model's block size {cfg.block_size}; use --seq {cfg.block_size} or "
           "less" + ("" if resumed else ", or a --config with a larger block size"))
    for split, tokens in data.items():
      if len(tokens) < self.seq + 2:
        fail(f"sequence length {self.seq} leaves no window of {self.seq} + 1 tokens in {split}.bin, which has "
             f"{len(tokens)} tokens" + (f"; use --seq {len(tokens) - 2} or less" if len(tokens) > 2 else ""))
    need, have = min_step_bytes(cfg, a.batch, self.seq), device_memory(device)
    if need > have:
      fail(f"batch {a.batch} x seq {self.seq} with n_layer {cfg.n_layer}, n_embd {cfg.n_embd}, vocab "
           f"{cfg.vocab_size} needs over {need / 2**30:,.1f} GiB, the {device} device has {have / 2**30:,.1f} GiB; "
           "lower --batch, --seq or the model's size")

  def new_config(self) -> GPTConfig:
    a = self.args
    cfg = GPTConfig(**CONFIGS[a.config or "tiny"])
    for k in ("n_layer", "n_head", "n_embd"):
      if getattr(a, k) is not None: setattr(cfg, k, getattr(a, k))
    cfg.vocab_size = pad_vocab(a.vocab_size or self.meta["vocab_size"])
    return cfg

  def resumed_config(self, meta: dict) -> GPTConfig:
    """The checkpoint's model config; options that set the model's size must agree with it."""
    a = self.args
    try: cfg = GPTConfig(**json.loads(meta["config"]))
    except (KeyError, TypeError, json.JSONDecodeError) as e:
      fail(f"--resume: {self.ckpt} has no valid model config in its metadata ({type(e).__name__}: {e})")
    given = {k: (f"--config {a.config}", v) for k, v in CONFIGS[a.config].items()} if a.config else {}
    given |= {k: (f"--{k.replace('_', '-')} {getattr(a, k)}", getattr(a, k))
              for k in ("n_layer", "n_head", "n_embd") if getattr(a, k) is not None}
    if a.vocab_size is not None: given["vocab_size"] = (f"--vocab-size {a.vocab_size}", pad_vocab(a.vocab_size))
    for k, (opt, v) in given.items():
      if getattr(cfg, k) != v:
        fail(f"{opt} gives {k} {v}, but the checkpoint {self.ckpt} has {k} {getattr(cfg, k)}; leave "
             f"{opt.split()[0]} out to resume with the checkpoint's model")
    return cfg

  # checkpoints: the model, both optimizers' state (the moments by parameter name) and the step
  def state(self) -> dict:
    """Every tensor a checkpoint holds, by its name there."""
    names = {id(p): name for name, p in self.model.named_parameters()}
    out = {f"model.{k}": v for k, v in self.model.state_dict().items() if k != "lm_head.weight"}
    for i, opt in enumerate(self.opts):
      for p, m, v in zip(opt.params, opt.m, opt.v): out[f"opt.m.{names[id(p)]}"], out[f"opt.v.{names[id(p)]}"] = m, v
      out[f"opt{i}.steps"] = opt.steps
    return out

  def save(self, path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    save_safetensors(self.state(), path, {"step": self.step, "config": json.dumps(self.model.config_dict()),
                                          "meta": json.dumps(self.meta), "ranks": self.world,
                                          "global_batch": self.args.batch * self.world})

  def read_checkpoint(self) -> tuple[dict, dict]:
    if not self.ckpt.exists(): fail(f"--resume: no checkpoint at {self.ckpt}")
    try: return load_safetensors(self.ckpt, device=self.args.device)
    except SafetensorsError as e: fail(f"--resume: {e}")

  def load(self, tensors: dict, meta: dict):
    """Copy a checkpoint's values into the model's and optimizers' tensors in place: their buffers stay the ones a
    captured jit step updates."""
    own = self.state()
    missing = [k for k in own if k not in tensors]
    wrong = [f"{k} {tensors[k].shape} (the model's: {t.shape})" for k, t in own.items()
             if k in tensors and tensors[k].shape != t.shape]
    problems = ([f"{len(missing)} tensors missing ({few(missing)})"] if missing else []) + \
               ([f"wrong shapes: {few(wrong)}"] if wrong else [])
    if problems: fail(f"--resume: {self.ckpt} does not fit the model: {'; '.join(problems)}")
    try: self.step = int(meta["step"])
    except (KeyError, ValueError): fail(f"--resume: {self.ckpt} has no integer step in its metadata")
    ranks, batch = int(meta.get("ranks", 1)), int(meta.get("global_batch", self.args.batch))
    if self.main and (ranks, batch) != (self.world, self.args.batch * self.world):
      print(f"note: {self.ckpt} was written by {ranks} rank(s) with a global batch of {batch}; this run has "
            f"{self.world} with {self.args.batch * self.world}: from step {self.step} on, the batches differ from "
            "those the first run would have drawn")
    with no_grad():
      for k, t in own.items(): t.assign(tensors[k])
    lazygrad.realize(*own.values())

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

  def _step_ranks(self, x: Tensor, y: Tensor, lr: Tensor) -> Tensor:
    """One data-parallel step: forward and backward, the gradients averaged over the ranks, then clipping (which sees
    the global gradient) and the update; returns the loss averaged over the ranks."""
    for opt in self.opts: opt.lr = lr
    loss = self.loss_of(x, y)
    for opt in self.opts: opt.zero_grad()
    loss.backward()
    params = self.model.parameters()
    # the backward runs in there, each bucket of gradients summed across the ranks as soon as it is written
    dist.average_gradients(params, along=(loss, *(p.grad for p in params if p.grad is not None)))
    if self.args.grad_clip: clip_grad_norm_(params, self.args.grad_clip)
    lazygrad.realize(*(t for opt in self.opts for t in opt.schedule_step()))
    total = dist.all_reduce(loss.detach().reshape(1).contiguous())
    return total / self.world

  def train_step(self) -> float:
    a = self.args
    lr = cosine_warmup_lr(self.step, a.warmup, a.steps, a.lr, a.min_lr)
    x, y = self.batches.get("train", self.step, a.device)
    lazygrad.manual_seed(np.random.SeedSequence([a.seed, self.step]).generate_state(1)[0])   # this step's dropout
    loss = self.step_kernels(x, y, Tensor([lr], device=a.device))
    self.step += 1
    return loss.item()

  @no_grad()
  def evaluate(self) -> float:
    """The validation loss (rank 0's batches)."""
    self.model.eval()   # no dropout
    try: losses = [self.loss_of(*self.batches.get("val", k, self.args.device)).item()
                   for k in range(self.args.eval_iters)]
    finally: self.model.train()
    return float(np.mean(losses))

  def run(self) -> list[float]:
    a = self.args
    losses, t_start = [], time.perf_counter()
    cfg = self.model.config
    log = print if self.main else (lambda *_, **__: None)   # only rank 0 speaks
    ranks = f", {self.world} ranks (global batch {a.batch * self.world})" if self.world > 1 else ""
    log(f"lazygrad GPT: {self.model.num_params() / 1e6:.2f}M parameters ({cfg.n_layer} layers, {cfg.n_head} heads, "
        f"{cfg.n_embd} wide), device "
        f"{self.model.wte.weight.device}, {a.precision}, batch {a.batch} x {self.seq} tokens{ranks}")
    t_log, tokens = time.perf_counter(), 0
    while self.step < a.steps:
      t0 = time.perf_counter()
      losses.append(self.train_step())
      if self.step == 1: log(f"first step (scheduling and compiling included): {time.perf_counter() - t0:.1f} s")
      tokens += a.batch * self.seq * self.world
      if self.step % a.log_interval == 0 or self.step == a.steps:
        dt = time.perf_counter() - t_log
        done = int(30 * self.step / a.steps)
        log(f"step {self.step:5d}/{a.steps} [{'=' * done}{' ' * (30 - done)}] loss {losses[-1]:.4f} | "
            f"{tokens / dt:,.0f} tok/s | lr {cosine_warmup_lr(self.step - 1, a.warmup, a.steps, a.lr, a.min_lr):.2e}",
            flush=True)
        t_log, tokens = time.perf_counter(), 0
      out_of_time = a.time_limit is not None and time.perf_counter() - t_start > a.time_limit
      if self.world > 1 and a.time_limit is not None:   # every rank stops at the step rank 0 stops at
        out_of_time = dist.broadcast(Tensor([float(out_of_time)])).item() > 0
      if self.main and (self.step % a.eval_interval == 0 or self.step == a.steps or out_of_time):
        log(f"step {self.step:5d}: val loss {self.evaluate():.4f}", flush=True)
        if self.ckpt is not None: self.save(self.ckpt)
      if out_of_time:
        log(f"time limit of {a.time_limit:.0f} s reached at step {self.step}")
        break
    return losses


def main(argv=None):
  args = parse_args(argv)
  if "RANK" in os.environ and "WORLD_SIZE" in os.environ:   # started by torchrun
    try: dist.init()
    except dist.DistributedError as e: fail(str(e))
  losses = Trainer(args).run()
  dist.shutdown()
  return losses


if __name__ == "__main__":
  main()
