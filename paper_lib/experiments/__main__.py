import sys

from paper_lib.experiments.runner import main

sys.exit(main())
