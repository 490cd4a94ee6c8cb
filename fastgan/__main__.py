"""``python -m fastgan ...`` (the form torchrun needs: ``torchrun ... -m fastgan train ...``)."""
import sys

from .cli import main

sys.exit(main())
