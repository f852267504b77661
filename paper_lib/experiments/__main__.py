import sys

from paper_lib.experiments.plan import main

sys.exit(main())
