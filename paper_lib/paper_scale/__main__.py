import sys

from paper_lib.paper_scale.recipe import main

sys.exit(main())
