"""`python -m starter.cli`, as the tests and the README run orderctl without installing it."""

import sys

from starter.cli.entry import main

sys.exit(main())
