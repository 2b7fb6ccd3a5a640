# The teacher's reference solution: the tutorial's threads server with its lock (step 3), written
# the tutorial's way. It passes every check; the class test grades it alone and in a class.
import socket
import threading

SERVER_NAME = 'localhost'
SERVER_PORT = 12345
messageCounter = 0
messageCounterLock = threading.Lock()


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
            try:
                data = conn.recv(1024)
            except ConnectionResetError:
                break
            if not data:
                break
            print('Received:', data)
            with messageCounterLock:
                nextCount = messageCounter + 1
                threading.Event().wait(0.1)
                messageCounter = nextCount
                print('Total messages received:', messageCounter)
            try:
                conn.sendall(data)
            except OSError:
                break
        conn.close()

    while True:
        conn, addr = sock.accept()
        print("Received new connection from ", addr)
        thread = threading.Thread(target=handle_client, args=(conn,), daemon=True)
        thread.start()


def start_server():
    listen_socket = initialize_server_socket()
    handle_new_connections_threads(listen_socket)


start_server()
