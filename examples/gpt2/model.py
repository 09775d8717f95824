"""GPT-2 in lazygrad: the model of Radford et al. (2019) as nanoGPT writes it, with GPT-2's initialisation, weight
tying, bf16 autocast and loading of Hugging Face GPT-2 weights."""
from __future__ import annotations
import math
from dataclasses import dataclass, asdict
import numpy as np
from lazygrad import Tensor, no_grad, realize
import lazygrad.nn as nn
from lazygrad.nn import functional as F


@dataclass
class GPTConfig:
  block_size: int = 1024
  vocab_size: int = 50304     # GPT-2's 50257 padded to a multiple of 64
  n_layer: int = 12
  n_head: int = 12
  n_embd: int = 768
  dropout: float = 0.0
  bias: bool = True


CONFIGS = {
  "tiny": dict(n_layer=2, n_head=2, n_embd=64, block_size=64),
  "mini": dict(n_layer=4, n_head=4, n_embd=128, block_size=128),
  "small": dict(n_layer=6, n_head=6, n_embd=384, block_size=256),
  "gpt2": dict(n_layer=12, n_head=12, n_embd=768, block_size=1024),   # 124M
}


def pad_vocab(n: int, multiple: int = 64) -> int: return -(-n // multiple) * multiple


class CausalSelfAttention(nn.Module):
  def __init__(self, cfg: GPTConfig, device=None):
    self.n_head, self.n_embd, self.dropout = cfg.n_head, cfg.n_embd, cfg.dropout
    self.c_attn = nn.Linear(cfg.n_embd, 3 * cfg.n_embd, bias=cfg.bias, device=device)
    self.c_proj = nn.Linear(cfg.n_embd, cfg.n_embd, bias=cfg.bias, device=device)
    self.resid_dropout = nn.Dropout(cfg.dropout)

  def forward(self, x: Tensor) -> Tensor:
    B, T, C = x.shape
    q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
    q, k, v = (t.reshape(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
    y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    y = F.dropout(y, self.dropout, self.training)
    return self.resid_dropout(self.c_proj(y.transpose(1, 2).reshape(B, T, C)))


class MLP(nn.Module):
  def __init__(self, cfg: GPTConfig, device=None):
    self.c_fc = nn.Linear(cfg.n_embd, 4 * cfg.n_embd, bias=cfg.bias, device=device)
    self.c_proj = nn.Linear(4 * cfg.n_embd, cfg.n_embd, bias=cfg.bias, device=device)
    self.dropout = nn.Dropout(cfg.dropout)

  def forward(self, x: Tensor) -> Tensor: return self.dropout(self.c_proj(self.c_fc(x).gelu("tanh")))


class Block(nn.Module):
  def __init__(self, cfg: GPTConfig, device=None):
    self.ln_1 = nn.LayerNorm(cfg.n_embd, bias=cfg.bias, device=device)
    self.attn = CausalSelfAttention(cfg, device)
    self.ln_2 = nn.LayerNorm(cfg.n_embd, bias=cfg.bias, device=device)
    self.mlp = MLP(cfg, device)

  def forward(self, x: Tensor) -> Tensor:
    x = x + self.attn(self.ln_1(x))
    return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
  def __init__(self, cfg: GPTConfig, device=None):
    self.config, self.device = cfg, device
    self.wte = nn.Embedding(cfg.vocab_size, cfg.n_embd, device=device)
    self.wpe = nn.Embedding(cfg.block_size, cfg.n_embd, device=device)
    self.drop = nn.Dropout(cfg.dropout)
    self.h = nn.ModuleList([Block(cfg, device) for _ in range(cfg.n_layer)])
    self.ln_f = nn.LayerNorm(cfg.n_embd, bias=cfg.bias, device=device)
    self.lm_head = nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False, device=device)
    self._init_weights()
    self.lm_head.weight = self.wte.weight          # weight tying

  def _init_weights(self):
    """GPT-2's initialisation: N(0, 0.02) weights, zero biases, residual projections scaled by 1/sqrt(2 n_layer)."""
    params = dict(self.named_parameters())
    for name, p in params.items():
      if name.endswith("bias"): w = Tensor.zeros(p.shape, device=self.device).clone()
      elif "ln_" in name: w = Tensor.ones(p.shape, device=self.device).clone()
      else:
        std = 0.02 / math.sqrt(2 * self.config.n_layer) if name.endswith("c_proj.weight") else 0.02
        w = Tensor.normal(*p.shape, std=std, device=self.device)
      p.node = w.node
    realize(*params.values())   # drawn on the host, filled on the device: one schedule

  def num_params(self, non_embedding: bool = True) -> int:
    n = sum(p.numel() for p in self.parameters())
    return n - self.wpe.weight.numel() if non_embedding else n

  def forward(self, idx: Tensor, targets: Tensor | None = None):
    B, T = idx.shape
    if T > self.config.block_size:
      raise ValueError(f"GPT: sequence length {T} is longer than block_size {self.config.block_size}")
    pos = Tensor.arange(T, device=idx.device)
    x = self.drop(self.wte(idx) + self.wpe(pos))
    for block in self.h: x = block(x)
    logits = self.lm_head(self.ln_f(x))
    if targets is None: return logits, None
    loss = logits.reshape(B * T, -1).cross_entropy(targets.reshape(B * T), ignore_index=-1)
    return logits, loss

  @no_grad()
  def generate(self, idx: np.ndarray, max_new_tokens: int, temperature: float = 1.0, top_k: int | None = None,
               rng: np.random.Generator | None = None, vocab_size: int | None = None) -> np.ndarray:
    """Continue each row of idx (B, T) by sampling max_new_tokens tokens among the first vocab_size (the real
    vocabulary; the model's is padded)."""
    rng = rng or np.random.default_rng()
    idx = np.asarray(idx, dtype=np.int64)
    B, T = idx.shape[0], self.config.block_size
    for _ in range(max_new_tokens):
      # a fixed-length window (zeros after the text, which causal attention never lets the text see) keeps one
      # graph structure for every token: scheduled and compiled once
      cond = idx[:, -T:]
      window = np.zeros((B, T), np.int64)
      window[:, :cond.shape[1]] = cond
      logits, _ = self(Tensor(window, device=self.device))
      rows = Tensor(np.arange(B) * T + cond.shape[1] - 1, device=self.device)
      last = logits.reshape(B * T, -1)[rows].float().numpy().astype(np.float64)[:, :vocab_size]
      last /= max(temperature, 1e-8)
      if top_k is not None:
        kth = np.sort(last, axis=-1)[:, -min(top_k, last.shape[-1])][:, None]
        last = np.where(last < kth, -np.inf, last)
      p = np.exp(last - last.max(-1, keepdims=True))
      p /= p.sum(-1, keepdims=True)
      nxt = np.array([rng.choice(p.shape[-1], p=row) for row in p])[:, None]
      idx = np.concatenate([idx, nxt], axis=1)
    return idx

  @classmethod
  def from_hf(cls, path: str, device=None, **overrides) -> "GPT":
    """Load Hugging Face GPT-2 weights from a local model.safetensors (Conv1D weights are stored transposed)."""
    tensors, _ = nn.load_safetensors(path)
    sd = {k.removeprefix("transformer."): v for k, v in tensors.items()}
    n_layer = 1 + max(int(k.split(".")[1]) for k in sd if k.startswith("h."))
    n_embd = sd["wte.weight"].shape[1]
    cfg = GPTConfig(block_size=sd["wpe.weight"].shape[0], vocab_size=pad_vocab(sd["wte.weight"].shape[0]),
                    n_layer=n_layer, n_embd=n_embd, n_head=overrides.pop("n_head", max(1, n_embd // 64)), **overrides)
    model = cls(cfg, device)
    own = model.state_dict()
    for name in own:
      if name == "lm_head.weight": continue                     # tied to wte
      w = sd[name].numpy()
      if name.endswith(("c_attn.weight", "c_proj.weight", "c_fc.weight")): w = w.T   # Conv1D: (in, out)
      if name == "wte.weight": w = np.pad(w, ((0, cfg.vocab_size - w.shape[0]), (0, 0)))
      own[name].node = Tensor(np.ascontiguousarray(w, np.float32), device=device).node
    return model

  def config_dict(self) -> dict: return asdict(self.config)
