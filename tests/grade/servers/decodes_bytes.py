# A student's threads server that prints the message as text: it decodes what it receives as
# UTF-8. The tutorial's message is fine, but byte 0x80 is not UTF-8: the handler's thread dies with
# UnicodeDecodeError and its client's connection is closed. The grader must fail it on the bytes
# check (and the half-close one, which sends the same bytes) and show the traceback beside them.
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
        with conn:
            while True:
                data = conn.recv(1024)
                if not data:
                    break
                print('Received:', data.decode())
                with messageCounterLock:
                    messageCounter = messageCounter + 1
                    print('Total messages received:', messageCounter)
                conn.sendall(data)

    while True:
        conn, addr = sock.accept()
        print("Received new connection from ", addr)
        thread = threading.Thread(target=handle_client, args=(conn,))
        thread.start()


def start_server():
    listen_socket = initialize_server_socket()
    handle_new_connections_threads(listen_socket)


start_server()
