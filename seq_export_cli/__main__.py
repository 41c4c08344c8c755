"""``python -m seq_export_cli``: the same as the ``seq-export`` command."""

import sys

from seq_export_cli.main import main

sys.exit(main())
