# A student's server with a typo in its first line of code: it never listens. The grader must say
# so once per check and go on.
import socket

SERVER_NAME = 'localhost'
SERVER_PORT = 12345

sock = socket.socket(socket.AF_INET, socket.SOCK_STREEM)
