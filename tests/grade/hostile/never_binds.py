# Hostile: prints the tutorial's first line and never listens; it just sleeps.
import time

print("Starting server on 'localhost' port 12345")
time.sleep(100000)
