"""``python -m serving.local``: the embedded TF-Serving-compatible server (see --help)."""

import sys

from serving.local.main import main

if __name__ == "__main__":
    sys.exit(main())
