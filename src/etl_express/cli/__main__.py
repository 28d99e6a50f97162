"""``python -m etl_express.cli``."""

from . import main

main()
