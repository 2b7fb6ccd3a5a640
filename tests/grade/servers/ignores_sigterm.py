# A student's locked threads server that wanted a polite message on SIGTERM, and forgot to stop:
# the handler prints and returns, so the server runs on. The grader must fail it on SIGTERM only.
import signal
import socket
import threading

SERVER_NAME = 'localhost'
SERVER_PORT = 12345
messageCounter = 0
messageCounterLock = threading.Lock()


def on_sigterm(signum, frame):
    print("Shutting down gracefully...")


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
            with messageCounterLock:
                messageCounter = messageCounter + 1
                print('Total messages received:', messageCounter)
            conn.sendall(data)
        conn.close()

    while True:
        conn, addr = sock.accept()
        print("Received new connection from ", addr)
        thread = threading.Thread(target=handle_client, args=(conn,))
        thread.start()


def start_server():
    signal.signal(signal.SIGTERM, on_sigterm)
    listen_socket = initialize_server_socket()
    handle_new_connections_threads(listen_socket)


start_server()
