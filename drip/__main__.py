"""`python -m drip` is the `drip` command."""

from drip.cli import main

raise SystemExit(main())
