"""``python -m conformance`` is the same as the ``odahu-conformance`` command."""

import sys

from conformance.cli import main

sys.exit(main())
