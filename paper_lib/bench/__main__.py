import sys

from paper_lib.bench.kernel import main
from paper_lib.cli import run_main

sys.exit(run_main(main))
