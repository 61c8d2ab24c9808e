"""``python -m ci_kit``: see :mod:`ci_kit.cli`."""

import sys

from ci_kit.cli import main

sys.exit(main())
