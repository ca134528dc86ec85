import sys

from zeta_desktop.cli import main

sys.exit(main())
