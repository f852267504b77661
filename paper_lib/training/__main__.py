import sys

from paper_lib.training.cli import main

sys.exit(main())
