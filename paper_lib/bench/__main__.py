import sys

from paper_lib.bench.kernel import main

sys.exit(main())
