"""The `drip` command: one module per group of subcommands, put together by drip.cli.main."""
