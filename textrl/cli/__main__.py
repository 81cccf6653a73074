"""``python -m textrl.cli``: the ``textrl`` command."""

import sys

from textrl.cli import main

sys.exit(main())
