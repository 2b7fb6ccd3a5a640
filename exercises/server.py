# The starter server: the tutorial's ServerPython.py at its first step, one connection at a time.
# Run it:   python3 exercises/server.py          (then: nc 127.0.0.1 12345, and type a line)
# Grade it: make grade FILE=exercises/server.py  (the sheet, exercises/README.md, says what next)
#
# The grader reads what this file prints, so keep these lines (exercises/README.md, "The contract"):
#   Received new connection from  ('127.0.0.1', 49743)   when a client connects
#   Received: b'Hello, world'                             for each message (decoded text is fine)
#   Total messages received: 1                            after each message: the count check's
#                                                         only way to see your counter
# and listen on port 12345. 'localhost' is fine: the grader's clients share your server's
# network namespace, as nc in another terminal shares your machine's.
import socket

SERVER_NAME = 'localhost'
SERVER_PORT = 12345
messageCounter = 0


def initialize_server_socket():
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # Restarting at once would otherwise fail for a minute: "Address already in use".
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    print("Starting server on '%s' port %d" % (SERVER_NAME, SERVER_PORT))
    sock.bind((SERVER_NAME, SERVER_PORT))
    sock.listen(5)
    return sock


def handle_client(conn):
    global messageCounter
    while True:
        data = conn.recv(1024)
        if not data:  # the client closed its side: b'' is how recv() says so
            break
        print('Received:', data)
        messageCounter = messageCounter + 1
        print('Total messages received:', messageCounter)
        conn.sendall(data)  # every byte back, as received: never decode what you echo
    conn.close()


def handle_new_connections_simple(sock):
    while True:
        conn, addr = sock.accept()
        print("Received new connection from ", addr)
        handle_client(conn)  # exercise 1 starts here: nobody else is served meanwhile


def start_server():
    listen_socket = initialize_server_socket()
    handle_new_connections_simple(listen_socket)


start_server()
