"""`python -m bovw.cli`: the `bovw` command."""

import sys

from bovw.cli.main import main

sys.exit(main())
