"""The ``vcr-ext`` command: one module per subcommand."""
