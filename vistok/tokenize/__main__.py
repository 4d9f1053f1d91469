"""``python -m vistok.tokenize`` / ``accelerate launch -m vistok.tokenize``."""

import sys

from vistok.tokenize.command import main

sys.exit(main())
