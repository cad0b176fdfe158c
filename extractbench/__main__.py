"""``python -m extractbench``: the command line."""

import sys

from extractbench.cli.main import main

sys.exit(main())
