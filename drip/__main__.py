"""`python -m drip` is the `drip` command."""

from drip.cli.main import main

raise SystemExit(main())
