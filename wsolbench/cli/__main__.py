import sys

from wsolbench.cli import main

# Guarded: a spawned worker process imports this module again under another name.
if __name__ == "__main__":
    sys.exit(main())
