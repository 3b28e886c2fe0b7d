"""The server: configuration (``config``), composition (``wiring``) and the process (``run``)."""
