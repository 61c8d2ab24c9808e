"""``python -m benchmarks [--full] [--only KEY] [--out DIR]``."""

import sys

from benchmarks.run import main

sys.exit(main())
