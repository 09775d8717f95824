"""A static HTML report of a run: one self-contained file (inline CSS, SVG and a little script; nothing fetched),
readable offline and in any browser.

It lists every kernel that ran, with its launches and times, the user lines it computes, its kernel AST (text and
drawing), uops and Triton source; every realize with its lazy graph and schedule (text and drawings); the time
spent in each compiler stage; lazygrad.jit's runs, captures and replays; and each cache lookup (schedules, programs,
the disk cache of rendered sources) with why it hit or missed.

    python -m lazygrad.report [-o report.html] script.py [args...]    # run a script and write its report
    LAZYGRAD_REPORT=report.html python script.py                      # the same, written when the process exits
    with lazygrad.debug.report("report.html"): ...                     # a block of a program

Collecting synchronizes the device after every kernel (to time it) and keeps the text forms of what ran, so a
reported run is slower than a plain one; the compiler itself does the same work. Graphs and schedules larger than
`MAX_DRAWN` nodes are listed as text only (graphviz would take minutes on them)."""
from __future__ import annotations
import argparse, atexit, contextlib, datetime, functools, html, os, runpy, sys, time, warnings
from collections import Counter
from dataclasses import dataclass, field
from ..helpers import counters, observers
from ..ir.node import graph_text
from ..codegen.schedule import schedule_text
from .draw import graph_picture, schedule_picture, kernel_picture, svg

MAX_DRAWN = 400   # nodes of a drawing; above it, text only


@dataclass
class _Kernel:
  """A kernel AST that ran (kernels with equal text are one), with what is known of its runs."""
  number: int
  name: str
  device: str
  ast: str
  ast_dot: str | None
  uops: str = ""
  source: str | None = None
  lines: Counter = field(default_factory=Counter)   # user line -> launches computing it
  launches: list = field(default_factory=list)   # (realize number, seconds)


@dataclass
class _Realize:
  number: int
  nodes: int
  graph: str
  graph_dot: str | None
  schedule: str = ""
  schedule_dot: str | None = None
  kernels: list = field(default_factory=list)   # _Kernel numbers in launch order
  cached: bool | None = None                    # whether its schedule came from the cache


def _collecting(method):
  """An observer event whose time is the report's own (kept apart from the compiler's in the stage table)."""
  @functools.wraps(method)
  def timed_method(self, *args):
    t0 = time.perf_counter()
    try: return method(self, *args)
    finally: self.own_seconds += time.perf_counter() - t0
  return timed_method


class Report:
  """The observer that collects a run for the report (see the module docstring); `write(path)` writes it."""

  def __init__(self, title: str = "lazygrad run"):
    self.title, self.started = title, datetime.datetime.now()
    self.t0, self.seconds0, self.own_seconds = time.perf_counter(), dict(counters.seconds), 0.0
    self.realizes: list[_Realize] = []
    self.kernels: dict[str, _Kernel] = {}   # kernel text -> its entry
    self._item_kernel: dict[int, _Kernel] = {}
    self.lookups: list[tuple] = []          # cache lookups: (kind, name, hit, reason, realize number)
    self.jit_calls: list[tuple] = []        # (function, action, reason, launches, seconds)
    self._seen_keys: dict[tuple, int] = {}  # (kind, key) -> realize number that first missed it

  # ------------------------------------------------------------------------------------------ observer events
  @_collecting
  def graph(self, targets):
    text = graph_text(targets)
    n = text.count("\n") + 1
    dot = _drawable(lambda: graph_picture(*targets).dot(), n)
    self.realizes.append(_Realize(len(self.realizes) + 1, n, text, dot))

  @_collecting
  def schedule(self, items, order):
    r = self.realizes[-1]
    r.schedule = schedule_text(items, order)
    r.schedule_dot = _drawable(lambda: schedule_picture(items=items).dot(), len(items) * 3)

  @_collecting
  def kernel(self, item, bufs, scalars):
    k = self.kernels.get(item.kernel.text)
    if k is None:
      k = self.kernels[item.kernel.text] = _Kernel(
        len(self.kernels), item.kernel.name, item.outputs[0].device, item.kernel.text,
        _drawable(lambda: kernel_picture(item.kernel).dot(), len(item.kernel.nodes)))
    k.lines.update(item.lines(range(len(item.kernel.nodes))).split(", "))
    self._item_kernel[id(item)] = k
    if self.realizes: self.realizes[-1].kernels.append(k.number)

  @_collecting
  def compiled(self, item, prg):
    k = self._item_kernel[id(item)]
    if not k.uops:
      k.uops = prg.prog.text
      if getattr(prg, "source", None): k.source = item.annotated(prg.source)

  def ran(self, item, seconds: float):
    self._item_kernel[id(item)].launches.append((len(self.realizes), seconds))

  def cache(self, kind: str, name: str, hit: bool, reason: str, key):
    here = len(self.realizes)
    first = self._seen_keys.setdefault((kind, key), here)
    if not hit and first != here: reason = f"seen in realize {first} and evicted from the cache since"
    if kind == "schedule" and self.realizes: self.realizes[-1].cached = hit
    self.lookups.append((kind, name, hit, reason, here))

  def jit(self, function: str, action: str, reason: str, launches: int, seconds: float):
    self.jit_calls.append((function, action, reason, launches, seconds))

  # --------------------------------------------------------------------------------------------------- output
  def stage_seconds(self) -> dict[str, float]:
    """Seconds per compiler stage since the report started, the kernels' run time, the report's own collecting, and
    the rest of the run."""
    stages = {k: v - self.seconds0.get(k, 0.0) for k, v in counters.seconds.items() if v > self.seconds0.get(k, 0.0)}
    stages["kernels (run)"] = sum(s for k in self.kernels.values() for _, s in k.launches)
    stages["collecting this report"] = self.own_seconds
    wall = time.perf_counter() - self.t0
    stages["everything else (the script's Python, imports, building graphs, cache lookups)"] = \
      max(0.0, wall - sum(stages.values()))
    return stages

  def html(self) -> str:
    """The report as one HTML document."""
    wall = time.perf_counter() - self.t0
    kernels = sorted(self.kernels.values(), key=lambda k: -sum(s for _, s in k.launches))
    launches = sum(len(k.launches) for k in kernels)
    run_time = sum(s for k in kernels for _, s in k.launches)
    replays = [j for j in self.jit_calls if j[1] == "replay"]
    devices = sorted({k.device for k in kernels}) or ["none"]
    cards = [("wall time", f"{wall:.3f} s"), ("realizes", len(self.realizes)), ("kernel launches", launches),
             ("distinct kernels", len(kernels)), ("kernel time", f"{run_time * 1e3:.3f} ms"),
             ("jit replays", len(replays)), ("replayed launches", sum(j[3] for j in replays)),
             ("device", ", ".join(devices))]
    body = [f"<header><h1>{_e(self.title)}</h1><p>lazygrad report, {self.started:%Y-%m-%d %H:%M:%S}. Kernel times "
            "are measured with the device synchronized around each launch; on a GPU a kernel's first launch includes "
            "Triton's compile.</p><nav><a href='#kernels'>kernels</a> <a href='#stages'>compiler stages</a> "
            "<a href='#realizes'>realizes</a> <a href='#caches'>caches</a> <a href='#jit'>jit</a></nav></header>",
            "<section id='summary'><div class='cards'>" +
            "".join(f"<div class='card'><b>{_e(v)}</b><span>{_e(k)}</span></div>" for k, v in cards) + "</div>"
            "</section>", self._kernels_html(kernels, run_time), self._stages_html(), self._realizes_html(),
            self._cache_html(), self._jit_html()]
    return (f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>{_e(self.title)}</title>"
            f"<style>{_CSS}</style></head>\n<body>\n" + "\n".join(body) + f"\n<script>{_JS}</script>\n</body></html>\n")

  def _kernels_html(self, kernels: list[_Kernel], run_time: float) -> str:
    rows, details = [], []
    for k in kernels:
      times = [s for _, s in k.launches]
      total = sum(times)
      lines = ", ".join(sorted(k.lines, key=_line_order))
      rows.append(f"<tr><td><a href='#k{k.number}'>{_e(k.name)}</a></td><td>{_e(k.device)}</td><td class='n'>"
                  f"{len(times)}</td><td class='n'>{total * 1e3:.3f}</td><td class='n'>"
                  f"{total / len(times) * 1e3 if times else 0:.3f}</td><td class='n'>"
                  f"{min(times, default=0) * 1e3:.3f}</td><td class='n'>{100 * total / run_time if run_time else 0:.1f}"
                  f"</td><td>{_e(lines)}</td></tr>")
      source = (f"<h4>Triton source (user lines attached from this run)</h4><pre>{_e(k.source)}</pre>" if k.source else
                "<h4>Source</h4><p>The numpy interpreter runs the uops themselves: there is no source.</p>")
      runs = ", ".join(f"realize {r}: {s * 1e3:.3f} ms" for r, s in k.launches[:50])
      runs += f", … ({len(k.launches) - 50} more)" if len(k.launches) > 50 else ""
      details.append(
        f"<details class='kernel' id='k{k.number}' data-name='{_e(k.name)}'><summary><code>{_e(k.name)}</code> "
        f"<span class='dim'>{len(times)} launch{'es' if len(times) != 1 else ''}, {total * 1e3:.3f} ms, "
        f"{_e(k.device)}</span></summary><h4>User lines</h4><ul>" +
        "".join(f"<li>{_e(ln)} <span class='dim'>({n} launch{'es' if n != 1 else ''})</span></li>"
                for ln, n in sorted(k.lines.items(), key=lambda x: _line_order(x[0]))) + f"</ul><p class='dim'>{_e(runs)}</p>"
        f"<h4>Kernel AST</h4><pre>{_e(k.ast)}</pre>{_figure(k.ast_dot, 'kernel AST')}"
        f"<h4>Uops</h4><pre>{_e(k.uops)}</pre>{source}</details>")
    return ("<section id='kernels'><h2>Kernels</h2><p>Slowest first; click a column to sort, a name for its AST, "
            "uops and source. <input id='filter' placeholder='filter by name or line'> <button id='expand'>expand "
            "all</button></p><table class='sortable' id='kernel-table'><thead><tr><th>kernel</th><th>device</th>"
            "<th>launches</th><th>total ms</th><th>mean ms</th><th>min ms</th><th>% of kernel time</th>"
            "<th>user lines</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>" + "".join(details) +
            "</section>")

  def _stages_html(self) -> str:
    stages = self.stage_seconds()
    top = max(stages.values(), default=0) or 1
    rows = "".join(f"<tr><td>{_e(k)}</td><td class='n'>{v * 1e3:.3f}</td><td><div class='bar' "
                   f"style='width:{300 * v / top:.0f}px'></div></td></tr>" for k, v in stages.items())
    return ("<section id='stages'><h2>Compiler stages</h2><p>Wall time per stage during the run: scheduling (graph "
            "to kernel ASTs, on a schedule cache miss), lowering to uops, rendering to source, loading rendered "
            "sources, Triton's compile (a first launch on a GPU), and running kernels.</p><table><thead><tr>"
            "<th>stage</th><th>ms</th><th></th></tr></thead><tbody>" + rows + "</tbody></table></section>")

  def _realizes_html(self) -> str:
    out, names = [], {k.number: k.name for k in self.kernels.values()}
    for r in self.realizes:
      cached = {True: "schedule from the cache", False: "scheduled", None: ""}[r.cached]
      out.append(f"<details class='realize' id='r{r.number}'><summary>realize {r.number} <span class='dim'>"
                 f"{r.nodes} graph nodes, {len(r.kernels)} kernel launches, {cached}</span></summary>"
                 "<p>" + ", ".join(f"<a href='#k{k}'>{_e(names[k])}</a>" for k in dict.fromkeys(r.kernels)) +
                 f"</p><h4>Schedule</h4><pre>{_e(r.schedule)}</pre>{_figure(r.schedule_dot, 'schedule')}"
                 f"<h4>Lazy graph</h4><pre>{_e(r.graph)}</pre>{_figure(r.graph_dot, 'lazy graph')}</details>")
    return "<section id='realizes'><h2>Realizes</h2>" + ("".join(out) or "<p>None.</p>") + "</section>"

  def _cache_html(self) -> str:
    counts = Counter((kind, hit) for kind, _, hit, _, _ in self.lookups)
    kinds = dict.fromkeys(kind for kind, *_ in self.lookups)
    summary = "".join(f"<tr><td>{_e(k)}</td><td class='n'>{counts[k, True]}</td><td class='n'>{counts[k, False]}"
                      "</td></tr>" for k in kinds)
    rows = "".join(f"<tr class='{'hit' if hit else 'miss'}'><td>{r}</td><td>{_e(kind)}</td><td>{_e(name)}</td>"
                   f"<td>{'hit' if hit else 'miss'}</td><td>{_e(reason)}</td></tr>"
                   for kind, name, hit, reason, r in self.lookups)
    return ("<section id='caches'><h2>Caches</h2><p><b>schedule</b>: graph structure to kernels (in memory); "
            "<b>program</b>: kernel AST to a compiled program (in memory); <b>disk</b>: rendered Triton sources "
            "(LAZYGRAD_CACHE), shared between processes.</p><table><thead><tr><th>cache</th><th>hits</th>"
            "<th>misses</th></tr></thead><tbody>" + summary + "</tbody></table><table class='sortable'><thead><tr>"
            "<th>realize</th><th>cache</th><th>what</th><th>outcome</th><th>why</th></tr></thead><tbody>" + rows +
            "</tbody></table></section>")

  def _jit_html(self) -> str:
    rows = "".join(f"<tr><td>{_e(f)}</td><td>{_e(a)}</td><td>{_e(why)}</td><td class='n'>{n}</td>"
                   f"<td class='n'>{s * 1e3:.3f}</td></tr>" for f, a, why, n, s in self.jit_calls)
    return ("<section id='jit'><h2>lazygrad.jit</h2><p>Each call of a jitted function: <b>run</b> as plain code, "
            "<b>capture</b> of its launches, or <b>replay</b> of them (host time; launches are asynchronous on a "
            "GPU).</p><table><thead><tr><th>function</th><th>call</th><th>why</th><th>launches</th><th>ms</th></tr>"
            "</thead><tbody>" + (rows or "<tr><td colspan='5'>No jitted calls.</td></tr>") + "</tbody></table>"
            "</section>")

  def write(self, path) -> str:
    """Write the report to `path`; returns the path. A path that cannot be written is said as a warning."""
    text = self.html()
    try:
      with open(path, "w", encoding="utf-8") as f: f.write(text)
    except OSError as e:
      warnings.warn(f"lazygrad report: cannot write {path} ({type(e).__name__}: {e}); the run is not affected",
                    stacklevel=2)
    return os.fspath(path)


def _drawable(dot, size: int) -> str | None:
  """The DOT source `dot()` makes, or None for drawings over MAX_DRAWN nodes."""
  return dot() if size <= MAX_DRAWN else None


def _figure(dot: str | None, what: str) -> str:
  if dot is None: return f"<p class='dim'>The {what} is too large to draw (over {MAX_DRAWN} nodes).</p>"
  drawn = svg(dot)
  if drawn is None:
    return (f"<p class='dim'>graphviz's <code>dot</code> is not installed: the {what} drawing as DOT source.</p>"
            f"<pre>{_e(dot)}</pre>")
  return f"<figure>{drawn[drawn.find('<svg'):]}</figure>"


def _line_order(loc: str) -> tuple:
  file, _, line = loc.rpartition(":")
  return (file, int(line) if line.isdigit() else 0)


def _e(x) -> str: return html.escape(str(x), quote=True)


@contextlib.contextmanager
def report(path, title: str = "lazygrad run"):
  """Collect everything the block runs and write its report to `path` at the end (also when the block raises)."""
  r = install(title)
  try: yield r
  finally:
    observers.remove(r)
    r.write(path)


def install(title: str) -> Report:
  """Collect from now on (LAZYGRAD_REPORT does this when lazygrad is imported, writing at exit)."""
  r = Report(title)
  observers.append(r)
  return r


def at_exit(path):
  """Collect the whole process and write the report to `path` when it exits (LAZYGRAD_REPORT)."""
  r = install(" ".join(sys.argv) or "lazygrad run")
  atexit.register(r.write, path)


def main(argv=None):
  """`python -m lazygrad.report [-o report.html] script.py [args...]`: run the script as __main__ and write the
  report of its run (also when it fails)."""
  parser = argparse.ArgumentParser(prog="python -m lazygrad.report", description=main.__doc__)
  parser.add_argument("-o", "--output", default="lazygrad-report.html", help="the HTML file to write")
  parser.add_argument("script", help="the Python script to run")
  parser.add_argument("args", nargs=argparse.REMAINDER, help="its arguments")
  a = parser.parse_args(argv)
  sys.argv = [a.script] + a.args
  sys.path.insert(0, os.path.dirname(os.path.abspath(a.script)))
  r = install(" ".join(sys.argv))
  try: runpy.run_path(a.script, run_name="__main__")
  finally:
    observers.remove(r)
    r.write(a.output)
    print(f"lazygrad report: {a.output} ({len(r.kernels)} kernels, {len(r.realizes)} realizes)", file=sys.stderr)


_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:0 auto;max-width:1200px;padding:0 16px 40px;color:#222}
h1{font-size:22px;margin:16px 0 4px}h2{border-bottom:1px solid #ccc;padding-bottom:4px;margin-top:32px}
h4{margin:12px 0 4px}nav a{margin-right:12px}.dim{color:#777}
pre{background:#f6f8fa;padding:8px;overflow:auto;max-height:480px;font:12px/1.35 ui-monospace,monospace}
table{border-collapse:collapse;margin:8px 0}td,th{border-bottom:1px solid #eee;padding:3px 8px;text-align:left;
vertical-align:top}th{background:#fafafa;cursor:pointer}td.n{text-align:right;font-variant-numeric:tabular-nums}
.cards{display:flex;flex-wrap:wrap;gap:8px}.card{border:1px solid #ddd;border-radius:6px;padding:8px 12px;
min-width:110px}.card b{display:block;font-size:18px}.card span{color:#666;font-size:12px}
details{border:1px solid #e3e3e3;border-radius:6px;margin:6px 0;padding:4px 10px}summary{cursor:pointer}
figure{margin:8px 0;overflow:auto;max-height:640px;border:1px solid #eee}.bar{background:#4a90d9;height:10px}
tr.miss td{background:#fff4e5}input{padding:3px 6px}
"""

# sorting, filtering, expanding; marks the document rendered (the browser test reads data-rendered)
_JS = """
document.querySelectorAll('table.sortable th').forEach((th, col) => th.addEventListener('click', () => {
  const body = th.closest('table').tBodies[0], rows = Array.from(body.rows);
  const num = rows.every(r => r.cells[col].textContent.trim() === '' || !isNaN(parseFloat(r.cells[col].textContent)));
  const dir = th.dataset.dir === 'asc' ? -1 : 1; th.dataset.dir = dir === 1 ? 'asc' : 'desc';
  rows.sort((a, b) => { const x = a.cells[col].textContent, y = b.cells[col].textContent;
    return dir * (num ? parseFloat(x) - parseFloat(y) : x.localeCompare(y)); });
  rows.forEach(r => body.appendChild(r));
}));
const filter = document.getElementById('filter');
filter.addEventListener('input', () => {
  const q = filter.value.toLowerCase();
  document.querySelectorAll('#kernel-table tbody tr').forEach(r => {
    r.style.display = r.textContent.toLowerCase().includes(q) ? '' : 'none'; });
});
document.getElementById('expand').addEventListener('click', () => {
  document.querySelectorAll('details.kernel').forEach(d => { d.open = true; }); });
document.body.dataset.rendered = document.querySelectorAll('#kernel-table tbody tr').length + ' kernels';
"""
