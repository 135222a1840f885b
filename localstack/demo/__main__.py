"""`python -m localstack.demo`, what `make demo` runs."""

import sys

from localstack.demo.run import main

sys.exit(main())
