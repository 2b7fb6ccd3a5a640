"""echolab's load generator: drives the echo server variants and measures them side by side."""
