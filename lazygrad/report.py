"""`python -m lazygrad.report [-o report.html] script.py [args...]`: run a script and write a static HTML report of
its run (lazygrad.debug.report)."""
from .debug.report import main

if __name__ == "__main__": main()
