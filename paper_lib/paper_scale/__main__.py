import sys

from paper_lib.cli import run_main
from paper_lib.paper_scale.recipe import main

sys.exit(run_main(main))
