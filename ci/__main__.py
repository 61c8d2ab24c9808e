"""``python -m ci``: see :mod:`ci.cli`."""

import sys

from ci.cli import main

sys.exit(main())
