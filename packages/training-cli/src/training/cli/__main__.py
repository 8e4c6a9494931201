"""`python -m training.cli` runs the `training` command."""

import sys

from training.cli.main import main

sys.exit(main())
