"""``python -m osfs`` is the ``osfs`` command."""

import sys

from .cli import main

sys.exit(main())
