"""``python -m strongroom.cli``: the same as the ``strongroom`` command."""

from __future__ import annotations

import sys

from .main import main

sys.exit(main())
