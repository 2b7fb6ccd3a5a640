# Hostile: says it starts, and exits at once with success.
import sys

print("Starting server on 'localhost' port 12345")
sys.exit(0)
