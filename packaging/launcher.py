"""Entry point of the frozen app (PyInstaller runs this as __main__)."""

import sys

from zeta_desktop.cli import main

if __name__ == "__main__":
    sys.exit(main())
