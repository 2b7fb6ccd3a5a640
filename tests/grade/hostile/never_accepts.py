# Hostile: listens, and never accepts: connections wait in the backlog until it is full.
import socket
import time

listener = socket.create_server(('localhost', 12345), backlog=1)
time.sleep(100000)
