"""echolab's echo server: the tutorial's concurrency models, and newer ones, around one handler."""
