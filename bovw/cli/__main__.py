"""`python -m bovw.cli`: the `bovw` command."""

import sys

from bovw.cli import main

sys.exit(main())
