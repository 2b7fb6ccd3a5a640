# Hostile: opens sockets until it runs out of descriptors, then serves with none to spare.
import socket

held = []
while True:
    try:
        held.append(socket.socket())
    except OSError as exc:
        print(f'opened {len(held)} sockets, then: {exc}')
        break
listener = socket.create_server(('localhost', 12345))
while True:
    conn, addr = listener.accept()
    conn.close()
