# Hostile: accepts every connection and never reads from any, nor closes one.
import socket

held = []
listener = socket.create_server(('localhost', 12345))
while True:
    conn, addr = listener.accept()
    print('Received new connection from ', addr)
    held.append(conn)
