"""``python -m dac4rec_lite`` (see ``dac4rec_lite.cli``)."""
import sys

from .cli import main

sys.exit(main())
