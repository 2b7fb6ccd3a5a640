# A student's threads server, as the tutorial first writes it: the counter is updated without a
# lock, with 0.1 s of "work" between reading it and writing it back. The grader must report lost
# updates in the two-loop experiment, and nothing else.
import socket
import threading

SERVER_NAME = 'localhost'
SERVER_PORT = 12345
messageCounter = 0


def initialize_server_socket():
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    print("Starting server on '%s' port %d" % (SERVER_NAME, SERVER_PORT))
    sock.bind((SERVER_NAME, SERVER_PORT))
    sock.listen(5)
    return sock


def handle_new_connections_threads(sock):
    def handle_client(conn):
        global messageCounter
        while True:
            data = conn.recv(1024)
            if not data:
                break
            print('Received:', data)
            nextCount = messageCounter + 1
            threading.Event().wait(0.1)
            messageCounter = nextCount
            print('Total messages received:', messageCounter)
            conn.sendall(data)
        conn.close()

    while True:
        conn, addr = sock.accept()
        print("Received new connection from ", addr)
        thread = threading.Thread(target=handle_client, args=(conn,))
        thread.start()


def start_server():
    listen_socket = initialize_server_socket()
    handle_new_connections_threads(listen_socket)


start_server()
