"""``python -m tether.worker``: see :mod:`tether.worker`."""

import sys

from tether.worker.main import main

sys.exit(main())
