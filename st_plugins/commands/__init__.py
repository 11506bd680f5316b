"""Sub-commands of the ``st-plugins`` command line (see :mod:`st_plugins.cli`)."""
