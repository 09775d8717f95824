"""Generate text from a lazygrad GPT checkpoint (train.py's ckpt.safetensors) or from Hugging Face GPT-2 weights
(a local model.safetensors, as `transformers` saves it).

Example: python examples/gpt2/sample.py --ckpt out/ckpt.safetensors --prompt "ROMEO:" --tokens 300"""
from __future__ import annotations
import argparse, json, sys
from pathlib import Path
import numpy as np
sys.path.insert(0, str(Path(__file__).parent))
from lazygrad.nn import load_safetensors
from model import GPT, GPTConfig


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
    if enc == "char": return [self.stoi[c] for c in text if c in self.stoi]
    if enc == "byte": return list(text.encode("utf-8"))
    if self.bpe is None: raise SystemExit("BPE prompts need tiktoken; pass --prompt-ids instead")
    return self.bpe.encode(text)

  def decode(self, ids) -> str:
    enc = self.meta.get("encoding", "bpe")
    if enc == "char": return "".join(self.itos[i] if i < len(self.itos) else "?" for i in ids)
    if enc == "byte": return bytes(int(i) for i in ids if i < 256).decode("utf-8", errors="replace")
    return self.bpe.decode([int(i) for i in ids]) if self.bpe is not None else " ".join(map(str, ids))


def load_model(args) -> tuple[GPT, dict]:
  if args.hf:
    return GPT.from_hf(args.hf, device=args.device), {"encoding": "bpe"}
  tensors, meta = load_safetensors(args.ckpt, device=args.device)
  model = GPT(GPTConfig(**json.loads(meta["config"])), device=args.device)
  model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")}, strict=False)
  return model, json.loads(meta.get("meta", "{}"))


def main(argv=None):
  ap = argparse.ArgumentParser(description="Sample from a GPT")
  src = ap.add_mutually_exclusive_group(required=True)
  src.add_argument("--ckpt", help="a train.py checkpoint")
  src.add_argument("--hf", help="a Hugging Face GPT-2 model.safetensors")
  ap.add_argument("--prompt", default="\n")
  ap.add_argument("--prompt-ids", default=None, help="comma-separated token ids instead of --prompt")
  ap.add_argument("--tokens", type=int, default=200)
  ap.add_argument("--temperature", type=float, default=0.8)
  ap.add_argument("--top-k", type=int, default=40)
  ap.add_argument("--seed", type=int, default=0)
  ap.add_argument("--device", default=None)
  args = ap.parse_args(argv)
  model, meta = load_model(args)
  model.eval()
  codec = Codec(meta)
  ids = [int(i) for i in args.prompt_ids.split(",")] if args.prompt_ids else codec.encode(args.prompt)
  out = model.generate(np.array([ids or [0]]), args.tokens, args.temperature, args.top_k,
                       rng=np.random.default_rng(args.seed), vocab_size=meta.get("vocab_size", 50257))
  text = codec.decode(out[0].tolist())
  print(text)
  return text


if __name__ == "__main__":
  main()
