"""Documents whose examples are real output: they fail here when the code and the text disagree."""
import ast, re, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).parents[1]


def test_walkthrough_is_what_its_generator_prints():
  sys.path.insert(0, str(ROOT / "docs"))
  try:
    import walkthrough
    text = walkthrough.walkthrough()
  finally: sys.path.remove(str(ROOT / "docs"))
  assert text == (ROOT / "docs" / "walkthrough.md").read_text(), \
    "docs/walkthrough.md is stale: run python docs/walkthrough.py and review the diff"


def test_the_readme_snippet_does_what_its_comment_says():
  readme = (ROOT / "README.md").read_text()
  snippet = re.search(r"```python\n(.*?)```", readme, re.S).group(1)
  claim = re.search(r"# -> (\d+) kernels: (.*)", snippet)
  code = snippet.replace("print(y.numpy().sum(-1))", "y.numpy()")
  out = subprocess.run([sys.executable, "-c", "import lazygrad\nfrom lazygrad import helpers\nnames = []\n"
                        "class Names:\n  def kernel(self, item, bufs, scalars): names.append(item.kernel.name)\n"
                        "helpers.observers.append(Names())\n" + code + "\nprint('KERNELS', names)"], capture_output=True, text=True, timeout=120,
                       env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "LAZYGRAD_DEVICE": "numpy"})
  assert out.returncode == 0, out.stderr
  names = ast.literal_eval(out.stdout.split("KERNELS", 1)[1].strip())
  assert len(names) == int(claim.group(1)), (names, claim.group(0))
  for name, part in zip(names, claim.group(2).replace("then ", "").split(", ")):
    assert all(word in name for word in part.replace("+", " ").split()), (name, part)
