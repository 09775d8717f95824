"""Train a small CNN (two convolutions, batch norm, max pooling, a linear classifier) with lazygrad.

The data are scikit-learn's 8x8 handwritten digits (`sklearn.datasets.load_digits`, shipped inside the package, no
download) when scikit-learn is installed, else generated digit-like data: ten random 8x8 prototypes, each sample one
of them shifted by a pixel and noised. Prints the loss as it trains and the held-out accuracy after each epoch.

Example: python examples/cnn/train.py --epochs 8"""
from __future__ import annotations
import argparse, time
import numpy as np
import lazygrad
from lazygrad import Tensor, nn, no_grad
from lazygrad.nn import functional as F
from lazygrad.optim import AdamW


def load_data(seed: int) -> tuple[str, np.ndarray, np.ndarray]:
  """Images (n, 1, 8, 8) float32 scaled to mean 0 and std 1, labels (n,) int64, and where they came from."""
  try:
    from sklearn.datasets import load_digits
    digits = load_digits()
    source, images, labels = "scikit-learn's 8x8 digits", digits.images.astype(np.float32), digits.target
  except ImportError:
    rng = np.random.default_rng(seed)
    prototypes = (rng.random((10, 8, 8)) > 0.6).astype(np.float32) * 16
    labels = rng.integers(0, 10, 1800)
    shifts = rng.integers(-1, 2, (len(labels), 2))
    images = np.stack([np.roll(prototypes[y], tuple(s), (0, 1)) for y, s in zip(labels, shifts)])
    images = (images + rng.normal(0, 4, images.shape)).astype(np.float32)
    source = "generated digit-like data (pip install scikit-learn for the real digits)"
  images = (images - images.mean()) / images.std()
  return source, images[:, None], labels.astype(np.int64)


class CNN(nn.Module):
  def __init__(self, classes: int = 10):
    self.features = nn.Sequential(
      nn.Conv2d(1, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),   # 16 x 4 x 4
      nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))                                  # 32 x 2 x 2
    self.classifier = nn.Linear(32 * 2 * 2, classes)

  def forward(self, x: Tensor) -> Tensor: return self.classifier(self.features(x).flatten(1))


def accuracy(model: CNN, images: np.ndarray, labels: np.ndarray, batch: int = 512) -> float:
  model.eval()
  with no_grad():
    hits = sum(int((model(Tensor(images[i:i + batch])).argmax(1) == Tensor(labels[i:i + batch])).sum().item())
               for i in range(0, len(images), batch))
  model.train()
  return hits / len(images)


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--epochs", type=int, default=8)
  ap.add_argument("--batch", type=int, default=64)
  ap.add_argument("--lr", type=float, default=3e-3)
  ap.add_argument("--seed", type=int, default=0)
  args = ap.parse_args(argv)
  lazygrad.manual_seed(args.seed)
  source, images, labels = load_data(args.seed)
  order = np.random.default_rng(args.seed).permutation(len(images))
  test, train = order[:300], order[300:]
  print(f"data: {source}: {len(train)} to train on, {len(test)} held out")
  model = CNN()
  opt = AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
  rng, start = np.random.default_rng(args.seed + 1), time.time()
  for epoch in range(args.epochs):
    shuffled, losses = rng.permutation(train), []
    for i in range(0, len(shuffled) - args.batch + 1, args.batch):   # whole batches: one schedule for every step
      idx = shuffled[i:i + args.batch]
      loss = F.cross_entropy(model(Tensor(images[idx])), Tensor(labels[idx]))
      opt.zero_grad()
      loss.backward()
      opt.step()
      losses.append(loss.item())
    held_out = accuracy(model, images[test], labels[test])
    print(f"epoch {epoch + 1}: loss {np.mean(losses):.4f}, held-out accuracy {held_out:.3f} "
          f"({time.time() - start:.1f} s)")


if __name__ == "__main__":
  main()
