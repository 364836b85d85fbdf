import sys

from akb.cli import main

sys.exit(main())
