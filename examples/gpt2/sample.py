"""Generate text from a lazygrad GPT checkpoint (train.py's ckpt.safetensors) or from Hugging Face GPT-2 weights
(a local model.safetensors, as `transformers` saves it).

Example: python examples/gpt2/sample.py --ckpt out/ckpt.safetensors --prompt "ROMEO:" --tokens 300"""
from __future__ import annotations
import argparse, json, math, sys
from pathlib import Path
import numpy as np
sys.path.insert(0, str(Path(__file__).parent))
from lazygrad.nn import load_safetensors, SafetensorsError
from model import GPT, GPTConfig


def fail(msg: str):
  """Stop with a one-line message (no traceback)."""
  raise SystemExit(f"sample.py: error: {msg}")


class Codec:
  """Text <-> token ids for a checkpoint's vocabulary: characters, bytes, or GPT-2 BPE (needs tiktoken)."""
  def __init__(self, meta: dict):
    self.meta = meta
    enc = meta.get("encoding", "bpe")
    if enc == "char":
      self.itos = meta["itos"]
      self.stoi = {c: i for i, c in enumerate(self.itos)}
    elif enc == "bpe":
      try:
        import tiktoken
        self.bpe = tiktoken.get_encoding("gpt2")
      except Exception: self.bpe = None

  def encode(self, text: str) -> list[int]:
    enc = self.meta.get("encoding", "bpe")
    if enc == "char":
      if unknown := sorted(set(text) - self.stoi.keys()):
        fail(f"--prompt has characters outside the checkpoint's vocabulary of {len(self.itos)}: "
             f"{', '.join(map(repr, unknown))}; leave them out")
      return [self.stoi[c] for c in text]
    if enc == "byte": return list(text.encode("utf-8"))
    if self.bpe is None: fail("BPE prompts need tiktoken; pass --prompt-ids instead")
    return self.bpe.encode(text)

  def decode(self, ids) -> str:
    enc = self.meta.get("encoding", "bpe")
    if enc == "char": return "".join(self.itos[i] if i < len(self.itos) else "?" for i in ids)
    if enc == "byte": return bytes(int(i) for i in ids if i < 256).decode("utf-8", errors="replace")
    return self.bpe.decode([int(i) for i in ids]) if self.bpe is not None else " ".join(map(str, ids))


def load_model(args) -> tuple[GPT, dict]:
  path = args.hf or args.ckpt
  if not Path(path).is_file(): fail(f"{'--hf' if args.hf else '--ckpt'} {path}: no such file")
  try:
    if args.hf: return GPT.from_hf(args.hf, device=args.device), {"encoding": "bpe"}
    tensors, meta = load_safetensors(args.ckpt, device=args.device)
  except SafetensorsError as e: fail(str(e))
  if "config" not in meta: fail(f"--ckpt {path} has no model config: not a train.py checkpoint")
  model = GPT(GPTConfig(**json.loads(meta["config"])), device=args.device)
  model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")}, strict=False)
  return model, json.loads(meta.get("meta", "{}"))


def prompt_ids(text: str, vocab_size: int) -> list[int]:
  """--prompt-ids's comma-separated token ids, each checked to be in the vocabulary."""
  try: ids = [int(i) for i in text.split(",")]
  except ValueError: fail(f"--prompt-ids {text!r} is not comma-separated integers")
  if bad := [i for i in ids if not 0 <= i < vocab_size]:
    fail(f"--prompt-ids has ids outside the vocabulary of {vocab_size} (0 to {vocab_size - 1}): "
         f"{', '.join(map(str, bad))}")
  return ids


def main(argv=None):
  ap = argparse.ArgumentParser(description="Sample from a GPT")
  src = ap.add_mutually_exclusive_group(required=True)
  src.add_argument("--ckpt", help="a train.py checkpoint")
  src.add_argument("--hf", help="a Hugging Face GPT-2 model.safetensors")
  ap.add_argument("--prompt", default="\n")
  ap.add_argument("--prompt-ids", default=None, help="comma-separated token ids instead of --prompt")
  ap.add_argument("--tokens", type=int, default=200)
  ap.add_argument("--temperature", type=float, default=0.8)
  ap.add_argument("--top-k", type=int, default=40, help="sample among the k likeliest tokens (0: among all)")
  ap.add_argument("--seed", type=int, default=0)
  ap.add_argument("--device", default=None)
  args = ap.parse_args(argv)
  if args.tokens < 0: ap.error(f"--tokens must be >= 0, got {args.tokens}")
  if not 0 < args.temperature < math.inf: ap.error(f"--temperature must be a positive number, got {args.temperature}")
  if args.top_k < 0: ap.error(f"--top-k must be >= 1, or 0 to sample among all tokens, got {args.top_k}")
  model, meta = load_model(args)
  model.eval()
  codec = Codec(meta)
  vocab_size = meta.get("vocab_size", 50257)
  ids = prompt_ids(args.prompt_ids, vocab_size) if args.prompt_ids else codec.encode(args.prompt)
  out = model.generate(np.array([ids or [0]]), args.tokens, args.temperature, args.top_k or None,
                       rng=np.random.default_rng(args.seed), vocab_size=vocab_size)
  text = codec.decode(out[0].tolist())
  print(text)
  return text


if __name__ == "__main__":
  main()
