"""echolab's echo server: the tutorial's seven concurrency models (and a few newer ones) around one handler."""
