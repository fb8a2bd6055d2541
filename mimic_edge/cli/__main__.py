import sys

from mimic_edge.cli import main

sys.exit(main())
