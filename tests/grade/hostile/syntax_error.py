# Hostile only to itself: a missing colon. Its report must name the SyntaxError and its line.
import socket

def start_server()
    sock = socket.create_server(('localhost', 12345))
