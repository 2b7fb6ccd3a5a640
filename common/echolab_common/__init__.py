"""What every echolab program shares that is not a lesson: one-line command-line errors,
waiting for a condition with a deadline, and results as dataclasses that are JSON (``record``).

Standard library only: it is copied into the server, client and loadgen images, and installed
on the host with the rest (pyproject.toml).
"""
