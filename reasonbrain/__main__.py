"""``python -m reasonbrain`` — same as the ``reasonbrain`` console script."""

from reasonbrain.cli import main

main()
