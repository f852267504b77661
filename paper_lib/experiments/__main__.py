import sys

from paper_lib.cli import run_main
from paper_lib.experiments.runner import main

sys.exit(run_main(main))
