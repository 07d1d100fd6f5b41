"""``python -m ser.cli``: the ``ser`` command."""

import sys

from ser.cli import main

sys.exit(main())
