"""``python -m strongroom.server [-dev | -config FILE]``."""

import sys

from strongroom.server.run import main

sys.exit(main())
